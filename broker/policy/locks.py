"""Locks as the rest of the policy asks about them: which hold now, which one
stops a user or a profile, and who belongs to the security role that places them."""

from django.db.models import Q, QuerySet
from django.utils import timezone

from broker.catalog.spec import Principals
from broker.models import AccessProfile, CatalogState, Lock
from broker.policy.principals import principal_matches
from lib.providers import get_provider


def holding_locks() -> QuerySet:
    """Locks in force now, with who and what they name, for pages and lists."""
    return _in_force().select_related("user", "profile", "placed_by", "lift_proposed_by")


def _in_force() -> QuerySet:
    """Locks in force now: neither lifted nor past their end."""
    return Lock.objects.filter(ended_at=None).filter(
        Q(ends_at=None) | Q(ends_at__gt=timezone.now())
    )


def profile_target(profile: AccessProfile) -> str:
    spec = profile.definition.provider
    return get_provider(spec.kind).target(spec.config)


def known_targets(*, enabled_only: bool = True) -> dict[str, list[str]]:
    """Each provider target of the profiles (the enabled ones, unless told), with
    the profiles there."""
    profiles = AccessProfile.objects.all()
    if enabled_only:
        profiles = profiles.filter(enabled=True)
    targets: dict[str, list[str]] = {}
    for profile in profiles:
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
    # Asked at every step of every request and nearly always empty: no joins, which
    # took half its time; a refusal's few names are read when there is one.
    return _in_force().filter(scope).order_by("placed_at").first()


def refusal(lock: Lock) -> str:
    """The lock as a refusal names it to anyone: what and until when, never who
    placed it or why (the person locked may be the one under investigation)."""
    return (
        f"{lock.scope} {lock.subject} is locked{_until(lock)} (lock {lock.pk}); "
        "ask the security team"
    )


def _until(lock: Lock) -> str:
    return f" until {lock.ends_at:%Y-%m-%d %H:%M} UTC" if lock.ends_at else ""


def lock_refusal(user, profile: AccessProfile | None = None) -> str | None:
    lock = lock_on(user, profile)
    return refusal(lock) if lock else None


def locked_user_ids() -> QuerySet:
    """The ids of the users a lock holds on now, for `__in`: a subquery of the
    query that asks, not a query of its own (every click and submission asks).
    Never a NULL among them, which would make `NOT IN` exclude everyone."""
    return _in_force().filter(scope=Lock.Scope.USER, user__isnull=False).values("user_id")


def security_principals() -> Principals:
    state = CatalogState.objects.first()
    return Principals.model_validate(state.security if state else {})


def is_security(user) -> bool:
    """A member of the catalog's security role (active; a locked member acts on no lock)."""
    return principal_matches(user, security_principals())
