from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django_otp import devices_for_user, match_token

from accounts.models import StepUp
from broker import audit


class MfaError(Exception):
    pass


def mfa_step_up(*, user, code: str, info: audit.RequestInfo) -> datetime:
    """Verify a TOTP code for `user` and remember when. Failures are audited.

    django-otp refuses a code already used in its time step and throttles
    repeated failures, so neither replay nor guessing gets far.
    """
    if not any(devices_for_user(user, confirmed=True)):
        raise MfaError("no MFA device is enrolled for this account; enrol one first")
    code = (code or "").strip().replace(" ", "")
    device = match_token(user, code) if code.isdigit() and len(code) <= 8 else None
    with transaction.atomic():
        if device is None:
            audit.record(action="mfa.failed", info=info, actor=user, target=user)
        else:
            now = timezone.now()
            StepUp.objects.update_or_create(
                user=user, defaults={"verified_at": now, "device": device.persistent_id}
            )
            audit.record(action="mfa.verified", info=info, actor=user, target=user)
    if device is None:
        raise MfaError("that code is not valid (or was already used); try the next one")
    return now
