"""MFA: step-up verification, TOTP enrolment, backup codes; what a disabled account
loses. Every change is audited."""

import hashlib
import hmac
import secrets
from datetime import datetime

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken, Authenticator, BackupCode, NotificationSettings, StepUp
from audit import trail
from audit.actions import Action

BACKUP_CODE_COUNT = 10
BACKUP_CODE_LENGTH = 10


class MfaError(Exception):
    pass


def has_mfa(user) -> bool:
    return Authenticator.objects.filter(user=user, confirmed=True).exists()


def mfa_step_up(*, user, code: str, info: trail.RequestInfo) -> datetime:
    """Verify a TOTP or backup code for `user` and remember when. Failures are audited.

    A TOTP code already used in its time step is refused; a backup code works
    once; wrong codes of either kind back off exponentially on the person's
    authenticator, whatever the channel. Neither replay nor guessing gets far.
    """
    code = (code or "").strip().replace(" ", "").replace("-", "").lower()
    if not (code.isalnum() and len(code) <= 16):
        code = ""
    with transaction.atomic():
        # Locked: codes sent at once (a script, or web, API and Slack together) are
        # judged one after another, each seeing the failures and the last code used
        # before it; else each would be tried against the same back-off and last_t.
        device = Authenticator.objects.select_for_update().filter(user=user, confirmed=True).first()
        if device is None:
            raise MfaError("no MFA device is enrolled for this account; enrol one first")
        now = timezone.now()
        allowed, throttled = device.verify_is_allowed()
        locked_until = None if allowed else (throttled or {}).get("locked_until")
        # TOTP codes are 6-8 digits, backup codes 10 characters: try only the one that fits.
        if locked_until:
            method = None  # throttled after repeated failures: do not even try
        elif code.isdigit() and len(code) <= 8:
            method = "totp" if device.verify_token(code) else None  # counts its own failures
        elif code and _use_backup_code(user, code, now):
            method = "backup_code"
            device.throttle_reset()
        else:
            method = None
            device.throttle_increment()  # a wrong backup code is a guess like any other
        if method is None:
            trail.record(action=Action.MFA_FAILED, info=info, actor=user, target=user)
        else:
            StepUp.objects.update_or_create(
                user=user, defaults={"verified_at": now, "method": method}
            )
            trail.record(
                action=Action.MFA_VERIFIED,
                info=info,
                actor=user,
                target=user,
                data={"method": method},
            )
    if method is None:
        raise MfaError(
            f"too many wrong codes; try again after {locked_until:%H:%M:%S} UTC"
            if locked_until
            else "that code is not valid (or was already used); try the next one"
        )
    return now


def notification_settings_update(*, user, email_approvals: bool) -> None:
    NotificationSettings.objects.update_or_create(
        user=user, defaults={"email_approvals": email_approvals}
    )


def _code_hash(code: str) -> str:
    # Keyed, so a copy of the database alone cannot brute-force the short codes.
    return hmac.new(settings.SECRET_KEY.encode(), code.encode(), hashlib.sha256).hexdigest()


def _use_backup_code(user, code: str, now: datetime) -> bool:
    return bool(
        BackupCode.objects.filter(user=user, code_hash=_code_hash(code), used_at=None).update(
            used_at=now
        )
    )


def backup_codes_left(user) -> int:
    return BackupCode.objects.filter(user=user, used_at=None).count()


def mfa_enrol_start(*, user) -> Authenticator:
    """A new, unconfirmed authenticator; it counts only once a code confirms it."""
    Authenticator.objects.filter(user=user, confirmed=False).delete()
    return Authenticator.objects.create(user=user, name="authenticator", confirmed=False)


def mfa_enrol_confirm(*, user, device_id: int, code: str, info: trail.RequestInfo) -> list[str]:
    """Confirm the new device with a code from it; replace any old one; new backup codes."""
    device = Authenticator.objects.filter(user=user, pk=device_id, confirmed=False).first()
    if device is None:
        raise MfaError("this set-up was started again elsewhere; scan the new code below")
    code = (code or "").strip().replace(" ", "")
    if not (code.isdigit() and device.verify_token(code)):
        with transaction.atomic():
            trail.record(action=Action.MFA_ENROL_FAILED, info=info, actor=user, target=user)
        raise MfaError(
            "that code does not match the key shown here: type the code your app shows "
            "now for Airlock (it changes every 30 seconds). If your app shows no such "
            "entry, scan the code again, or start again with a new key"
        )
    with transaction.atomic():
        Authenticator.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _new_backup_codes(user)
        # Confirming the device just proved possession of it.
        StepUp.objects.update_or_create(
            user=user, defaults={"verified_at": timezone.now(), "method": "totp"}
        )
        trail.record(action=Action.MFA_ENROLLED, info=info, actor=user, target=user)
    return codes


def mfa_backup_codes_regenerate(*, user, info: trail.RequestInfo) -> list[str]:
    with transaction.atomic():
        codes = _new_backup_codes(user)
        trail.record(action=Action.MFA_BACKUP_CODES_REGENERATED, info=info, actor=user, target=user)
    return codes


def mfa_remove(*, user, info: trail.RequestInfo) -> None:
    with transaction.atomic():
        Authenticator.objects.filter(user=user).delete()
        BackupCode.objects.filter(user=user).delete()
        StepUp.objects.filter(user=user).delete()
        trail.record(action=Action.MFA_REMOVED, info=info, actor=user, target=user)


def _new_backup_codes(user) -> list[str]:
    """Replace the user's backup codes; the plaintext is returned once, to show."""
    BackupCode.objects.filter(user=user).delete()
    codes = [secrets.token_hex(BACKUP_CODE_LENGTH // 2) for _ in range(BACKUP_CODE_COUNT)]
    BackupCode.objects.bulk_create(
        BackupCode(user=user, code_hash=_code_hash(code)) for code in codes
    )
    return codes


def account_access_end(*, user, info: trail.RequestInfo) -> dict[str, int]:
    """Nothing of a disabled account acts for it again: its API tokens are revoked
    (re-enabling the account brings none back) and its web sessions end, whatever
    disabled it (SCIM, the admin, a shell). Grants and requests follow in the
    broker, Slack links in the Slack app."""
    now = timezone.now()
    revoked = 0
    with transaction.atomic():
        for token in ApiToken.objects.select_for_update().filter(user=user, revoked_at=None):
            token.revoked_at = now
            token.save(update_fields=["revoked_at"])
            trail.record(
                action=Action.API_TOKEN_REVOKED,
                info=info,
                target=user,
                reason="account disabled",
                data={"token": token.pk, "name": token.name},
            )
            revoked += 1
    return {"tokens_revoked": revoked, "sessions_ended": _end_sessions(user)}


def _end_sessions(user) -> int:
    # Sessions are stored by key with the user id inside the signed data: read each
    # live one (a disabled account is rare; sessions expire after hours).
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get(SESSION_KEY) == str(user.pk):
            session.delete()
            ended += 1
    return ended
