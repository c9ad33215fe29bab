"""The access catalog: policy as code.

A YAML file declares groups and access profiles. `load_catalog` parses and
validates it without touching the database; `sync_catalog` (in services) applies
it. Every error names the profile and the field so a reviewer can fix it.
"""

import hashlib
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from integrations.providers import ProviderConfigError, get_provider
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
    def _automatic_extension_of_single_approval_only(self) -> "ProfileSpec":
        """An extension the policy approves gives time with no approver at all,
        which contradicts access that needs more than one."""
        if self.extension is None or self.extension.approval != "auto":
            return self
        needs = sum(step.approvals for step in self.approval_steps)
        why = (
            f"{needs} approvals are required"
            if needs > 1
            else "policy.extra_approvals_above asks for more approvers"
            if self.policy.extra_approvals_above
            else ""
        )
        if why:
            raise ValueError(
                f"extension.approval: auto contradicts the approvals this access needs ({why}): "
                "more time would be given by the policy alone; use approval: required"
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
    """Points per risk factor; see broker/risk.py for what each one means."""

    weights: dict[
        Literal[
            "sensitivity", "first_time", "long_duration", "off_hours", "burst",
            "recent_denial", "new_address", "several_sensitive",
        ],
        Annotated[int, Field(ge=0, le=100)],
    ] = {}  # fmt: skip
    business_hours: BusinessHours = BusinessHours()
    # A profile this sensitive or more counts for "several sensitive profiles at once".
    sensitive_from: Annotated[int, Field(ge=0, le=50)] = 30


class CatalogSpec(Strict):
    version: Literal[1]
    # What happens to live grants whose requester loses their standing (leaves a
    # requesting group, account disabled, profile removed): revoked at once, or
    # kept until they expire. Pending requests are withdrawn either way.
    on_eligibility_lost: Literal["revoke", "keep"] = "revoke"
    groups: dict[Name, list[Name]] = {}
    risk: RiskSpec = RiskSpec()
    profiles: list[ProfileSpec]


@dataclass
class Catalog:
    spec: CatalogSpec
    sha256: str
    warnings: list[str] = field(default_factory=list)


class CatalogError(Exception):
    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate mapping keys instead of keeping the last."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise CatalogError([f"line {key_node.start_mark.line + 1}: duplicate key {key!r}"])
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_catalog(path: str | Path) -> Catalog:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CatalogError([f"{path}: {exc.strerror}"]) from None
    return parse_catalog(raw)


def parse_catalog(raw: bytes) -> Catalog:
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506  # nosec B506  # a SafeLoader
    except UnicodeDecodeError:
        raise CatalogError(["the file is not UTF-8 text"]) from None
    except yaml.YAMLError as exc:
        raise CatalogError([f"not valid YAML: {exc}".replace("\n", " ")]) from None
    if not isinstance(data, dict):
        raise CatalogError(["the catalog must be a mapping with 'version' and 'profiles'"])
    try:
        spec = CatalogSpec.model_validate(data)
    except ValidationError as exc:
        raise CatalogError([_describe(error, data) for error in exc.errors()]) from None
    catalog = Catalog(spec=spec, sha256=hashlib.sha256(raw).hexdigest())
    errors = _check_semantics(catalog)
    if errors:
        raise CatalogError(errors)
    return catalog


def _describe(error: dict, data: dict) -> str:
    loc = list(error["loc"])
    where = ".".join(str(part) for part in loc) or "catalog"
    if len(loc) >= 2 and loc[0] == "profiles" and isinstance(loc[1], int):
        profiles = data.get("profiles")
        profile_id = None
        if (
            isinstance(profiles, list)
            and loc[1] < len(profiles)
            and isinstance(profiles[loc[1]], dict)
        ):
            profile_id = profiles[loc[1]].get("id")
        rest = ".".join(str(part) for part in loc[2:]) or "profile"
        where = f"profile {profile_id!r}: {rest}" if profile_id else f"profiles[{loc[1]}]: {rest}"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return f"{where}: {message}"


def _check_semantics(catalog: Catalog) -> list[str]:
    spec = catalog.spec
    errors: list[str] = []
    seen: set[str] = set()
    for profile in spec.profiles:
        where = f"profile {profile.id!r}"
        if profile.id in seen:
            errors.append(f"{where}: id: duplicate profile id")
        seen.add(profile.id)
        try:
            provider = get_provider(profile.provider.kind)
            provider.validate_config(profile.provider.config)
        except ProviderConfigError as exc:
            field_name = "kind" if "unknown provider" in str(exc) else "config"
            errors.append(f"{where}: provider.{field_name}: {exc}")
        else:
            if profile.max_duration < provider.min_duration:
                errors.append(
                    f"{where}: max_duration: {profile.provider.kind} needs at least "
                    f"{format_duration(provider.min_duration)}"
                )

        undeclared = [
            group
            for group in (*profile.approvers.groups, *profile.requesters.groups)
            if group not in spec.groups
        ]
        for group in sorted(set(undeclared)):
            catalog.warnings.append(
                f"{where}: group {group!r} is not declared in the catalog; its members come "
                "from Django groups and are not checked here"
            )
        glass = profile.policy.break_glass
        if glass is not None and glass.max_duration > profile.max_duration:
            errors.append(
                f"{where}: policy.break_glass.max_duration: longer than max_duration "
                f"{format_duration(profile.max_duration)}"
            )
        for group in (profile.policy.auto_approve.requester_groups
                      if profile.policy.auto_approve else []):  # fmt: skip
            if group not in spec.groups:
                catalog.warnings.append(
                    f"{where}: policy.auto_approve.requester_groups: {group!r} is not declared"
                )
        steps = profile.policy.steps
        checks = (
            [(f"policy.steps[{n}]", step.approvers, step.approvals)
             for n, step in enumerate(steps, 1)]
            if steps else [("approvals_required", profile.approvers, profile.approvals_required)]
        )  # fmt: skip
        for field_name, approvers, needed in checks:
            errors.extend(_pool_errors(spec, profile, where, field_name, approvers, needed))
        errors.extend(_step_overlaps(spec, where, steps))
    return errors


def _step_overlaps(spec, where, steps) -> list[str]:
    """An approver decides once: if an earlier step's approvals may be taken by
    people also in a later step's pool, that step must still have enough left."""
    errors = []
    for later_index, later in enumerate(steps):
        if any(group not in spec.groups for group in later.approvers.groups):
            continue
        later_pool = members(spec, later.approvers)
        for earlier in steps[:later_index]:
            shared = later_pool & members(spec, earlier.approvers)
            left = len(later_pool) - min(earlier.approvals, len(shared))
            if left < later.approvals:
                errors.append(
                    f"{where}: policy.steps[{later_index + 1}]: if {', '.join(sorted(shared))} "
                    f"decide(s) an earlier step, only {left} approver(s) are left for this one "
                    f"({later.approvals} needed)"
                )
    return errors


def _pool_errors(spec, profile, where, field_name, approvers, needed) -> list[str]:
    if any(group not in spec.groups for group in approvers.groups):
        return []  # the approver pool is not fully known without the database
    pool = members(spec, approvers)
    if len(pool) < needed:
        return [
            f"{where}: {field_name}: {needed} approvals required but only "
            f"{len(pool)} approver(s) declared"
        ]
    return [
        f"{where}: approvers: {requester!r} may request this profile and only "
        f"{len(pool) - 1} other approver(s) could approve it ({needed} required)"
        for requester in sorted(members(spec, profile.requesters) & pool)
        if len(pool - {requester}) < needed
    ]


def members(spec: CatalogSpec, principals: Principals) -> set[str]:
    """The usernames that `principals` names, as far as the catalog declares them."""
    names = set(principals.users)
    for group in principals.groups:
        names.update(spec.groups.get(group, []))
    return names
