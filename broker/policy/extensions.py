"""How much more time a grant may get: the one answer the lifecycle enforces and
the web page and Slack show before anyone asks."""

from dataclasses import dataclass
from datetime import timedelta

from broker.catalog.spec import ExtensionSpec
from broker.models import Grant
from broker.policy.externals import external_of


@dataclass(frozen=True)
class ExtensionLimit:
    rules: ExtensionSpec
    longest: timedelta  # the whole grant, extensions included
    why: str  # "for prod-db", or "for break-glass access to prod-db"
    by_policy: bool  # approved by the policy, with no human
    refusal: str = ""  # set when this grant can no longer be extended at all

    def room(self, grant: Grant) -> timedelta:
        return max(self.longest - grant.duration, timedelta(0))

    def offered(self, grant: Grant) -> bool:
        """Worth offering an Extend button for: allowed, room left, count left."""
        return (
            not self.refusal
            and grant.status == Grant.Status.ACTIVE
            and grant.extensions < self.rules.max_count
            and self.room(grant) > timedelta(0)
        )


def extension_limit(grant: Grant) -> ExtensionLimit | None:
    """None when the profile allows no extension, or for a third party (who asks
    again, through their sponsor). A break-glass grant skipped every approver
    once: it is capped at the break-glass duration and more time always needs a
    human."""
    profile = grant.profile
    rules = profile.definition.extension
    if rules is None or external_of(grant.request.requester) is not None:
        return None

    if not grant.request.break_glass:
        return ExtensionLimit(
            rules, rules.max_total, f"for {profile.slug}", rules.approval == "auto"
        )
    emergency = profile.definition.policy.break_glass
    if emergency is None:
        refusal = f"{profile.slug} no longer allows break-glass access"
        return ExtensionLimit(rules, grant.duration, "", False, refusal)
    longest = min(rules.max_total, emergency.max_duration)
    return ExtensionLimit(rules, longest, f"for break-glass access to {profile.slug}", False)
