"""Reading a catalog file: YAML parsed strictly, validated against the spec, then
checked as a whole (pools of approvers, providers' configs). Nothing here
touches the database; every error names the profile and the field."""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from broker.catalog.spec import CatalogSpec, Principals
from lib.durations import format_duration
from lib.providers import ProviderConfigError, get_provider


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


# Anomalies a single requester sets off by what they themselves do.
ONE_REQUESTER_SETS_OFF = ("high_risk", "break_glass", "frequent_sensitive")


def _check_semantics(catalog: Catalog) -> list[str]:
    spec = catalog.spec
    errors: list[str] = []
    seen: set[str] = set()
    for kind, rule in spec.containment.items():
        if kind in ONE_REQUESTER_SETS_OFF and rule.scope != "user":
            catalog.warnings.append(
                f"containment.{kind}: scope {rule.scope} lets one requester's own doing revoke "
                f"everyone's access to the {rule.scope}; scope user locks only them"
            )
    security = spec.security
    if (security.groups or security.users) and len(members(spec, security)) < 2:
        catalog.warnings.append(
            "security: fewer than two people as far as the catalog declares: lifting a "
            "lock takes two of them"
        )
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
        errors.extend(_automatic_extension_errors(profile, where))
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


def _automatic_extension_errors(profile, where: str) -> list[str]:
    """An extension the policy approves gives time with no approver at all, which
    contradicts access that needs more than one. Checked when a catalog is read,
    not on every stored profile: one synced before this rule still loads."""
    if profile.extension is None or profile.extension.approval != "auto":
        return []
    needs = sum(step.approvals for step in profile.approval_steps)
    if needs > 1:
        why = f"{needs} approvals are required"
    elif profile.policy.extra_approvals_above:
        why = "policy.extra_approvals_above asks for more approvers"
    else:
        return []
    return [
        f"{where}: extension.approval: auto contradicts the approvals this access needs "
        f"({why}): more time would be given by the policy alone; use approval: required"
    ]


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
