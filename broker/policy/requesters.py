"""Who may request a profile. Group membership lives in Django groups, which
`sync_catalog` fills from the catalog's declared groups."""

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from broker.catalog.spec import Principals
from broker.models import AccessProfile
from lib.providers import get_provider


def users_matching(principals: Principals) -> QuerySet:
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(username__in=principals.users) | Q(groups__name__in=principals.groups))
        .distinct()
    )


def principal_matches(user, principals: Principals) -> bool:
    if not user.is_active:
        return False
    if user.get_username() in principals.users:
        return True
    return user.groups.filter(name__in=principals.groups).exists()


def can_request(user, profile: AccessProfile) -> bool:
    return standing_problem(user, profile) is None


def unavailable_because(profile: AccessProfile) -> str | None:
    """Why this deployment cannot grant `profile` (its source is not configured
    here), found without asking the source; None when it can try."""
    spec = profile.definition.provider
    return get_provider(spec.kind).missing_configuration(spec.config)


def requestable_profiles(user) -> list[AccessProfile]:
    return [p for p in AccessProfile.objects.filter(enabled=True) if can_request(user, p)]


def standing_problem(user, profile: AccessProfile) -> str | None:
    """Why `user` may no longer ask for or hold `profile`, or None while they may.

    Submission is not the only gate: approval, activation, extension and reveal
    each ask again, so a requester who left the group, an account disabled, or a
    profile removed from the catalog stops the access at the next step."""
    if not user.is_active:
        return f"{user.get_username()}'s account is disabled"
    if not profile.enabled:
        return f"{profile.slug} was removed from the catalog"
    if not principal_matches(user, profile.definition.requesters):
        return f"{user.get_username()} may no longer request {profile.slug}"
    return None
