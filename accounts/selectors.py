from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import Authenticator, NotificationSettings, StepUp

# Set in a web session once its user has passed MFA in it (the admin needs it).
MFA_SESSION_KEY = "mfa_verified_at"


def wants_approval_emails(user) -> bool:
    settings_row = NotificationSettings.objects.filter(user=user).first()
    return settings_row.email_approvals if settings_row else True


def pending_authenticator(user, device_id: int | None) -> Authenticator | None:
    """The authenticator `user` is setting up (not yet confirmed), if it is that one."""
    return Authenticator.objects.filter(user=user, pk=device_id or 0, confirmed=False).first()


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


def recent_step_up_in_session(request) -> datetime | None:
    """When MFA was passed in this very web session, if within the step-up window.

    A step-up is otherwise per account, whatever the channel. What outlives the
    session (an authenticator, backup codes, an API token) and the admin's changes
    ask for this one: else a step-up made in Slack, through the API or in another
    browser would lend its minutes to whoever holds this session's cookie."""
    try:
        verified_at = datetime.fromisoformat(request.session.get(MFA_SESSION_KEY, ""))
    except (TypeError, ValueError):
        return None
    if timezone.now() - verified_at > settings.AIRLOCK_STEP_UP_WINDOW:
        return None
    return verified_at if recent_step_up(request.user) else None  # MFA removed meanwhile


def normalised_email(address: str) -> str:
    """An email address as Airlock compares it: exactly as given, but for the domain
    in lower case (DNS names are case-insensitive; only ASCII ones are lowered).

    The local part is compared as is: RFC 5321 leaves its case to the receiving
    server, so `Bob@` and `bob@` may be two mailboxes, and Unicode case mapping
    would make different addresses equal (SQL's UPPER() turns "charlie" spelt with
    a dotless i, U+0131, into "CHARLIE"). "" for anything that is not local@domain."""
    local, at, domain = address.rpartition("@")
    if not (local and at and domain):
        return ""
    return f"{local}@{domain.lower() if domain.isascii() else domain}"


def active_user_with_email(address: str):
    """The one active member of staff whose email is exactly `address` (see
    normalised_email), or None: also when several share it, since a shared address
    names nobody. A third party (broker's external accounts) is never found by
    email: no Slack or single sign-on binds to them that way."""
    wanted = normalised_email(address or "")
    if not wanted:
        return None
    # iexact narrows the search in SQL (it finds every exact match, and more);
    # the exact comparison is made here.
    candidates = get_user_model().objects.filter(
        email__iexact=wanted, is_active=True, external_access__isnull=True
    )
    matches = [user for user in candidates if normalised_email(user.email) == wanted]
    return matches[0] if len(matches) == 1 else None


def user_zone(user) -> ZoneInfo:
    """The person's time zone from their preferences; UTC when unset or unknown."""
    name = getattr(getattr(user, "preferences", None), "timezone", "") or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
