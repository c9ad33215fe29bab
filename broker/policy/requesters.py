"""Who may request a profile, and whether they still may."""

from broker.models import AccessProfile
from broker.policy.externals import external_of, external_problem
from broker.policy.locks import lock_refusal
from broker.policy.principals import principal_matches
from broker.policy.reviews import review_removal
from lib.providers import get_provider


def can_request(user, profile: AccessProfile) -> bool:
    """Eligible for the profile (a lock may still refuse it now, naming itself)."""
    return eligibility_problem(user, profile) is None


def unavailable_because(profile: AccessProfile) -> str | None:
    """Why this deployment cannot grant `profile` (its source is not configured
    here), found without asking the source; None when it can try."""
    spec = profile.definition.provider
    return get_provider(spec.kind).missing_configuration(spec.config)


def requestable_profiles(user) -> list[AccessProfile]:
    return [p for p in AccessProfile.objects.filter(enabled=True) if can_request(user, p)]


def eligibility_problem(user, profile: AccessProfile) -> str | None:
    if not user.is_active:
        return f"{user.get_username()}'s account is disabled"
    if not profile.enabled:
        return f"{profile.slug} was removed from the catalog"
    if (access := external_of(user)) is not None:
        if problem := external_problem(access, profile):
            return problem
        # Nobody delegates what they no longer have.
        if eligibility_problem(access.sponsor, profile) is not None:
            return f"{user.get_username()}'s sponsor may no longer ask for {profile.slug}"
    elif not principal_matches(user, profile.definition.requesters):
        return f"{user.get_username()} may no longer request {profile.slug}"
    if removal := review_removal(user, profile):
        return (
            f"{user.get_username()} was removed from {profile.slug} by the access review "
            f"{removal.item.review.name}"
        )
    return None


def standing_problem(user, profile: AccessProfile) -> str | None:
    """Why `user` may no longer ask for or hold `profile`, or None while they may.

    Submission is not the only gate: approval, activation, extension and reveal
    each ask again, so a requester who left the group, an account disabled, a
    profile removed from the catalog, or a lock stops the access at the next step."""
    return eligibility_problem(user, profile) or lock_refusal(user, profile)
