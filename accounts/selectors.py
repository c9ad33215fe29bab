from datetime import datetime

from django.conf import settings
from django.utils import timezone

from accounts.models import StepUp

# Set in a web session once its user has passed MFA in it (the admin needs it).
MFA_SESSION_KEY = "mfa_verified_at"


def recent_step_up_record(user) -> StepUp | None:
    """The user's last MFA verification, if it is within the step-up window."""
    step_up = StepUp.objects.filter(user=user).first()
    if step_up and timezone.now() - step_up.verified_at <= settings.AIRLOCK_STEP_UP_WINDOW:
        return step_up
    return None


def recent_step_up(user) -> datetime | None:
    """When `user` last passed MFA, if that is within the step-up window."""
    step_up = recent_step_up_record(user)
    return step_up.verified_at if step_up else None
