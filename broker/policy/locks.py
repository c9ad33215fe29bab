"""Locks as the rest of the policy asks about them: which hold now, which one
stops a user or a profile, and who belongs to the security role that places them."""

from django.db.models import Q, QuerySet
from django.utils import timezone

from broker.catalog.spec import Principals
from broker.models import AccessProfile, CatalogState, Lock
from broker.policy.principals import principal_matches
from lib.providers import get_provider


def holding_locks() -> QuerySet:
    """Locks in force now: neither lifted nor past their end."""
    now = timezone.now()
    return (
        Lock.objects.filter(ended_at=None)
        .filter(Q(ends_at=None) | Q(ends_at__gt=now))
        .select_related("user", "profile", "placed_by", "lift_proposed_by")
    )


def profile_target(profile: AccessProfile) -> str:
    spec = profile.definition.provider
    return get_provider(spec.kind).target(spec.config)


def known_targets() -> dict[str, list[str]]:
    """Each provider target of the enabled profiles, with the profiles there."""
    targets: dict[str, list[str]] = {}
    for profile in AccessProfile.objects.filter(enabled=True):
        targets.setdefault(profile_target(profile), []).append(profile.slug)
    return targets


def profiles_at(target: str) -> list[AccessProfile]:
    return [p for p in AccessProfile.objects.all() if profile_target(p) == target]


def lock_on(user, profile: AccessProfile | None = None) -> Lock | None:
    """The oldest lock in force on the user, or (given one) on the profile or its target."""
    scope = Q(scope=Lock.Scope.USER, user=user)
    if profile is not None:
        scope |= Q(scope=Lock.Scope.PROFILE, profile=profile)
        scope |= Q(scope=Lock.Scope.TARGET, target=profile_target(profile))
    return holding_locks().filter(scope).order_by("placed_at").first()


def describe(lock: Lock) -> str:
    """The lock as a refusal names it: what, by whom, why, until when, which one."""
    by = lock.placed_by.get_username() if lock.placed_by else "automatic containment"
    until = f" until {lock.ends_at:%Y-%m-%d %H:%M} UTC" if lock.ends_at else ""
    return f"{lock.scope} {lock.subject} is locked by {by}{until}: {lock.reason} (lock {lock.pk})"


def lock_refusal(user, profile: AccessProfile | None = None) -> str | None:
    lock = lock_on(user, profile)
    return describe(lock) if lock else None


def security_principals() -> Principals:
    state = CatalogState.objects.first()
    return Principals.model_validate(state.security if state else {})


def is_security(user) -> bool:
    """A member of the catalog's security role (active; a locked member acts on no lock)."""
    return principal_matches(user, security_principals())
