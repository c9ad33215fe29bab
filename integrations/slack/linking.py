"""Who a Slack user is: links made from a verified email or a one-time code."""

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.selectors import active_user_with_email
from audit import trail
from audit.actions import Action
from audit.models import Source
from broker.policy.externals import external_of
from integrations.slack.models import SlackIdentity, SlackLinkCode

LINK_CODE_LIFETIME = timedelta(minutes=10)


def linked_user(team_id: str, slack_user_id: str):
    """The active Airlock user linked to this Slack user, or None (a third party
    never acts through Slack: the web, after MFA, is their door)."""
    link = (
        # The (absent) external access read with the user: every policy check asks.
        SlackIdentity.objects.select_related("user__external_access")
        .filter(team_id=team_id, slack_user_id=slack_user_id, user__external_access__isnull=True)
        .first()
    )
    return link.user if link and link.user.is_active else None


def slack_id_of(user) -> str | None:
    link = SlackIdentity.objects.filter(user=user).order_by("-linked_at").first()
    return link.slack_user_id if link else None


def info_for(team_id: str, slack_user_id: str) -> trail.RequestInfo:
    """Where a Slack action came from: Slack gives no address, so the user agent
    names the workspace and the Slack user."""
    return trail.RequestInfo(source=Source.SLACK, user_agent=f"slack:{team_id}/{slack_user_id}")


def _link(user, team_id: str, slack_user_id: str, how: str):
    try:
        with transaction.atomic():
            if how == "email":
                # Serialised per user: two Slack users with the same email arriving
                # at once must not both be linked.
                get_user_model().objects.select_for_update().get(pk=user.pk)
                if SlackIdentity.objects.filter(user=user).exists():
                    return None  # a second identity only by a code from the web
            SlackIdentity.objects.create(
                user=user,
                team_id=team_id,
                slack_user_id=slack_user_id,
                linked_at=timezone.now(),
                linked_by=how,
            )
            trail.record(
                action=Action.SLACK_LINKED,
                info=info_for(team_id, slack_user_id),
                actor=user,
                target=user,
                data={"team_id": team_id, "slack_user_id": slack_user_id, "by": how},
            )
    except IntegrityError:
        return linked_user(team_id, slack_user_id)  # linked meanwhile by another request
    return user


def slack_link_by_email(*, team_id: str, slack_user_id: str, email: str):
    """Link on first contact when Slack vouches for the email (the caller checks
    that it is confirmed and that the user is in a workspace Airlock serves) and
    exactly one active Airlock account has exactly that address, and that account
    has no Slack identity yet; otherwise nobody. Never staff or a superuser, as
    with single sign-on: they link with a code, after MFA on the web."""
    user = active_user_with_email(email)
    if user is None or user.is_staff or user.is_superuser:
        return None
    return _link(user, team_id, slack_user_id, "email")


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().lower().encode()).hexdigest()


def slack_link_code_create(*, user) -> str:
    """A new one-time code (the old one stops working), valid for ten minutes."""
    code = secrets.token_hex(8)
    SlackLinkCode.objects.update_or_create(
        user=user,
        defaults={"code_hash": _code_hash(code), "expires_at": timezone.now() + LINK_CODE_LIFETIME},
    )
    return code


def slack_link_by_code(*, team_id: str, slack_user_id: str, code: str):
    """The user whose code this is, now linked; None for a wrong or expired code."""
    with transaction.atomic():
        found = (
            SlackLinkCode.objects.select_for_update()
            .select_related("user")
            .filter(code_hash=_code_hash(code), expires_at__gt=timezone.now())
            .first()
        )
        if found is None or not found.user.is_active or external_of(found.user) is not None:
            return None
        user = found.user
        found.delete()  # once only
    current = SlackIdentity.objects.filter(team_id=team_id, slack_user_id=slack_user_id).first()
    if current is not None:
        # Never move a Slack account from one person to another silently.
        return user if current.user_id == user.pk else None
    return _link(user, team_id, slack_user_id, "code")


def slack_unlink(*, user, info: trail.RequestInfo) -> int:
    return _unlink(user, info, actor=user)


def slack_links_end(*, user) -> int:
    """A disabled account's links go: re-enabled, it is linked again by hand."""
    return _unlink(user, trail.SYSTEM, actor=None, reason="account disabled")


def _unlink(user, info: trail.RequestInfo, *, actor, reason: str = "") -> int:
    with transaction.atomic():
        count, _ = SlackIdentity.objects.filter(user=user).delete()
        if count:
            trail.record(
                action=Action.SLACK_UNLINKED, info=info, actor=actor, target=user, reason=reason
            )
    return count
