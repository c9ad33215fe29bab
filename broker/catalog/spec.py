"""The access catalog's shape: policy as code.

A YAML file declares groups and access profiles; these models say what each
part may hold. broker/catalog/load.py reads a file against them, and
broker/lifecycle/catalog.py applies it.
"""

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from lib.durations import format_duration, parse_duration

MAX_DURATION = timedelta(days=7)

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@+-]{1,150}$")]


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Principals(Strict):
    groups: list[Name] = []
    users: list[Name] = []


class ProviderSpec(Strict):
    kind: str
    config: dict[str, Any] = {}


class ExtensionSpec(Strict):
    """When and how a grant of the profile may be extended."""

    max_count: Annotated[int, Field(ge=1, le=10)] = 1
    # The whole grant, extensions included, lasts at most this long.
    max_total: Duration
    # An extension may be asked only once this share of the current window has passed.
    after_share: Annotated[float, Field(ge=0, lt=1)] = 0.5
    # required: approvers decide as for a request; auto: approved by the policy.
    approval: Literal["required", "auto"] = "required"

    @field_validator("max_total")
    @classmethod
    def _bounded(cls, value: timedelta) -> timedelta:
        if value > MAX_DURATION:
            raise ValueError(f"at most {format_duration(MAX_DURATION)}")
        return value


class ApprovalStep(Strict):
    """One step of a multi-step approval: N approvals from these approvers."""

    approvers: Principals
    approvals: Annotated[int, Field(ge=1, le=10)] = 1


class ExtraApprovals(Strict):
    """Above this risk score, this many more approvals (on the last step)."""

    risk: Annotated[int, Field(ge=0, le=1000)]
    approvals: Annotated[int, Field(ge=1, le=5)] = 1


class AutoApprove(Strict):
    """Approved by the policy when every condition given here holds."""

    max_risk: Annotated[int, Field(ge=0, le=1000)]
    # The learned model's 0-100 score (broker/riskmodel): approve only what is usual.
    # With no trained model yet, a request has no such score and is not auto-approved.
    max_unusual: Annotated[int, Field(ge=0, le=100)] | None = None
    requester_groups: list[Name] = []  # e.g. the on-call group
    ticket_pattern: str | None = None
    business_hours: bool = False

    @field_validator("ticket_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return _regex(value)


class BreakGlass(Strict):
    """Emergency access without approval: capped, loud, and reviewed afterwards."""

    max_duration: Duration
    review_within: Duration = timedelta(hours=24)


class Reminders(Strict):
    """Remind undecided approvers after `first_after`, then doubling; escalate once."""

    first_after: Duration = timedelta(minutes=15)
    escalate_after: Duration | None = None
    escalate_to: Principals | None = None

    @model_validator(mode="after")
    def _escalation_complete(self) -> "Reminders":
        if (self.escalate_after is None) != (self.escalate_to is None):
            raise ValueError("escalate_after and escalate_to go together")
        return self


class PolicySpec(Strict):
    steps: list[ApprovalStep] = []
    extra_approvals_above: ExtraApprovals | None = None
    deny_above: Annotated[int, Field(ge=0, le=1000)] | None = None
    auto_approve: AutoApprove | None = None
    break_glass: BreakGlass | None = None
    reminders: Reminders | None = None

    @model_validator(mode="after")
    def _coherent(self) -> "PolicySpec":
        auto, deny = self.auto_approve, self.deny_above
        if auto is not None and deny is not None and auto.max_risk >= deny:
            raise ValueError(
                f"auto_approve.max_risk {auto.max_risk} reaches deny_above {deny}: a request "
                "could be auto-approved and denied at once"
            )
        extra = self.extra_approvals_above
        if extra is not None and auto is not None and auto.max_risk >= extra.risk:
            raise ValueError(
                f"auto_approve.max_risk {auto.max_risk} reaches extra_approvals_above.risk "
                f"{extra.risk}: a request needing more approvers would be auto-approved"
            )
        for number, step in enumerate(self.steps, 1):
            if not (step.approvers.groups or step.approvers.users):
                raise ValueError(f"steps[{number}] names no approvers")
        return self


class ProfileSpec(Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    provider: ProviderSpec
    requesters: Principals
    approvers: Principals
    approvals_required: Annotated[int, Field(ge=1, le=10)] = 1
    max_duration: Duration
    default_duration: Duration | None = None
    reason_required: bool = True
    ticket_required: bool = False
    ticket_pattern: str | None = None
    pending_ttl: Duration = timedelta(hours=1)
    slack_channel: Annotated[str, Field(pattern=r"^[#A-Za-z0-9_-]{1,80}$")] | None = None
    # Also ask each eligible approver (linked to Slack) in a direct message.
    slack_dm_approvers: bool = False
    extension: ExtensionSpec | None = None
    # 0 (harmless) to 50 (crown jewels): weighs in the risk score.
    sensitivity: Annotated[int, Field(ge=0, le=50)] = 0
    # Third parties (vendors, contractors) may be invited to ask for it: `allowed`.
    external: Literal["allowed", "denied"] = "denied"
    policy: PolicySpec = PolicySpec()

    @field_validator("max_duration", "pending_ttl")
    @classmethod
    def _bounded(cls, value: timedelta) -> timedelta:
        if value > MAX_DURATION:
            raise ValueError(f"at most {format_duration(MAX_DURATION)}")
        return value

    @field_validator("ticket_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return _regex(value)

    @model_validator(mode="after")
    def _extension_beyond_max(self) -> "ProfileSpec":
        if self.extension and self.extension.max_total <= self.max_duration:
            raise ValueError(
                f"extension.max_total {format_duration(self.extension.max_total)} leaves no "
                f"room beyond max_duration {format_duration(self.max_duration)}"
            )
        return self

    @model_validator(mode="after")
    def _default_within_max(self) -> "ProfileSpec":
        if self.default_duration and self.default_duration > self.max_duration:
            raise ValueError(
                f"default_duration {format_duration(self.default_duration)} is longer than "
                f"max_duration {format_duration(self.max_duration)}"
            )
        return self

    @property
    def duration_default(self) -> timedelta:
        return self.default_duration or min(self.max_duration, timedelta(hours=1))

    @property
    def approval_steps(self) -> list[ApprovalStep]:
        """The steps in order; a profile without `policy.steps` has one."""
        return list(self.policy.steps) or [
            ApprovalStep(approvers=self.approvers, approvals=self.approvals_required)
        ]


class BusinessHours(Strict):
    start: Annotated[int, Field(ge=0, le=23)] = 8
    end: Annotated[int, Field(ge=1, le=24)] = 18
    days: list[Annotated[int, Field(ge=0, le=6)]] = [0, 1, 2, 3, 4]  # Monday is 0


class RiskSpec(Strict):
    """Points per risk factor; see broker/policy/risk.py for what each one means."""

    weights: dict[
        Literal[
            "sensitivity", "first_time", "long_duration", "off_hours", "burst",
            "recent_denial", "new_address", "several_sensitive", "unusual",
        ],
        Annotated[int, Field(ge=0, le=100)],
    ] = {}  # fmt: skip
    business_hours: BusinessHours = BusinessHours()
    # A profile this sensitive or more counts for "several sensitive profiles at once".
    sensitive_from: Annotated[int, Field(ge=0, le=50)] = 30
    # The learned model adds points from this score (0-100) up: none below, its full
    # weight at 100.
    unusual_from: Annotated[int, Field(ge=0, le=99)] = 90


# What each anomaly (broker/anomalies.py) can name, and so what it may lock.
CONTAINABLE: dict[str, tuple[str, ...]] = {
    "frequent_sensitive": ("user", "profile", "target"),
    # Between a requester and approvers, which side is at fault is for a human to judge:
    # an approver alone could otherwise get any requester locked.
    "rubber_stamping": (),
    "break_glass": ("user", "profile", "target"),
    "reconciler_revoked": ("profile", "target"),
    "night_quick_approval": ("user",),
    "high_risk": ("user", "profile", "target"),
}


class ContainmentRule(Strict):
    """Automatic containment: the anomaly also locks what it names, for a while."""

    action: Literal["lock"]
    scope: Literal["user", "profile", "target"]
    duration: Duration
    # high_risk only: a submitted request scoring this much or more.
    risk_from: Annotated[int, Field(ge=1, le=1000)] | None = None

    @field_validator("duration")
    @classmethod
    def _bounded(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= value <= MAX_DURATION:
            raise ValueError(f"between 1m and {format_duration(MAX_DURATION)}")
        return value


class ExternalRules(Strict):
    """What third parties get, stricter than staff: their sponsor approves first,
    then the profile's approvers; never break-glass, never by policy alone."""

    # Each request of an external is capped at this (and at the profile's own).
    max_duration: Duration = timedelta(hours=1)
    business_hours_only: bool = False

    @field_validator("max_duration")
    @classmethod
    def _bounded(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=5) <= value <= MAX_DURATION:
            raise ValueError("from 5m to 7d")
        return value


class ReviewSchedule(Strict):
    """An access review started every `every`: who may ask for `profile` (or is in
    `group`), each kept or removed by the reviewers within `takes`."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    profile: str | None = None
    group: Name | None = None
    every: Duration
    takes: Duration = timedelta(days=14)
    # Default: the profile's approvers, or the security role for a group.
    # "managers": each person's line manager (SCIM), the default for those without.
    reviewers: Principals | Literal["managers"] | None = None
    unreviewed: Literal["keep", "remove"] = "keep"

    @model_validator(mode="after")
    def _one_subject_and_a_sane_rhythm(self) -> "ReviewSchedule":
        if (self.profile is None) == (self.group is None):
            raise ValueError(f"review {self.name}: name one profile or one group")
        if not timedelta(days=1) <= self.takes <= timedelta(days=90):
            raise ValueError(f"review {self.name}: takes is from 1d to 90d")
        if not self.takes < self.every <= timedelta(days=366):
            raise ValueError(f"review {self.name}: takes must be shorter than every (at most 366d)")
        return self


class CatalogSpec(Strict):
    version: Literal[1]
    # What happens to live grants whose requester loses their standing (leaves a
    # requesting group, account disabled, profile removed): revoked at once, or
    # kept until they expire. Pending requests are withdrawn either way.
    on_eligibility_lost: Literal["revoke", "keep"] = "revoke"
    groups: dict[Name, list[Name]] = {}
    # Who may lock users, profiles and provider targets; lifting a lock takes two of them.
    security: Principals = Principals()
    # Anomalies that lock as well as alert (off unless named here).
    containment: dict[Literal[tuple(CONTAINABLE)], ContainmentRule] = {}  # type: ignore[valid-type]
    risk: RiskSpec = RiskSpec()
    # Periodic access reviews (broker/lifecycle/reviews.py).
    reviews: list[ReviewSchedule] = []
    # Third parties under a sponsor (broker/lifecycle/externals.py).
    externals: ExternalRules = ExternalRules()
    profiles: list[ProfileSpec]

    @model_validator(mode="after")
    def _reviews_name_what_exists(self) -> "CatalogSpec":
        profiles = {p.id for p in self.profiles}
        names = [r.name for r in self.reviews]
        if len(names) != len(set(names)):
            raise ValueError("reviews: each review needs a name of its own")
        for review in self.reviews:
            if review.profile is not None and review.profile not in profiles:
                raise ValueError(f"review {review.name}: no profile {review.profile!r}")
            if review.group is not None and review.group not in self.groups:
                raise ValueError(
                    f"review {review.name}: no group {review.group!r} in the catalog's groups"
                )
        return self

    @model_validator(mode="after")
    def _containment_names_what_it_can(self) -> "CatalogSpec":
        for kind, rule in self.containment.items():
            if rule.scope not in CONTAINABLE[kind]:
                can = ", ".join(CONTAINABLE[kind]) or "nothing: a human judges it"
                raise ValueError(
                    f"containment.{kind}: it names no {rule.scope} to lock (it can lock: {can})"
                )
            if (rule.risk_from is None) != (kind != "high_risk"):
                raise ValueError(f"containment.{kind}: risk_from is for high_risk, which needs it")
        return self
