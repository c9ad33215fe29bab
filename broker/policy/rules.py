"""The profile's policy over a request and its risk, evaluated in one place.

`evaluate` returns what happens to a new request (denied, approved by the
policy, or asked of approvers, and how many) with a trace of every rule it
weighed, which is stored with the request and printed by `explain_policy`.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime

from broker.catalog.spec import Principals, ProfileSpec
from broker.policy.principals import principal_matches
from broker.policy.risk import Assessment, in_business_hours, risk_spec

DENY, AUTO_APPROVE, ASK, BREAK_GLASS = "deny", "auto_approve", "ask", "break_glass"


@dataclass
class Outcome:
    action: str
    approvals_required: int
    reason: str = ""
    trace: list[dict] = field(default_factory=list)

    def note(self, rule: str, applies: bool, why: str) -> None:
        self.trace.append({"rule": rule, "applies": applies, "why": why})


def evaluate(
    definition: ProfileSpec, *, requester, assessment: Assessment, ticket: str, local_time: datetime
) -> Outcome:
    rules = definition.policy
    base = sum(step.approvals for step in definition.approval_steps)
    outcome = Outcome(action=ASK, approvals_required=base)
    score = assessment.score
    outcome.note("risk", True, f"score {score}: {assessment.reasons()}")

    if rules.deny_above is not None:
        denied = score > rules.deny_above
        outcome.note("deny_above", denied, f"{score} {'>' if denied else '≤'} {rules.deny_above}")
        if denied:
            outcome.action = DENY
            outcome.reason = (
                f"denied by policy: risk {score} is above {rules.deny_above} "
                f"({assessment.reasons()})"
            )
            return outcome

    extra = rules.extra_approvals_above
    if extra is not None:
        more = score > extra.risk
        outcome.note("extra_approvals_above", more,
                     f"{score} {'>' if more else '≤'} {extra.risk}"
                     + (f": {extra.approvals} more approval(s)" if more else ""))  # fmt: skip
        if more:
            outcome.approvals_required += extra.approvals

    if len(definition.approval_steps) > 1:
        plan = [f"{s.approvals} of {_names(s.approvers)}" for s in definition.approval_steps]
        outcome.note("steps", True, " then ".join(plan))

    auto = rules.auto_approve
    if auto is not None and outcome.approvals_required == base:
        checks = [(score <= auto.max_risk, f"risk {score} ≤ {auto.max_risk}",
                   f"risk {score} > {auto.max_risk}")]  # fmt: skip
        if auto.max_unusual is not None:
            unusual = assessment.unusual
            usual = unusual is not None and unusual <= auto.max_unusual
            checks.append((usual, f"unusual {unusual} ≤ {auto.max_unusual}",
                           f"unusual {unusual} > {auto.max_unusual}" if unusual is not None
                           else "no trained model to say it is usual"))  # fmt: skip
        if auto.requester_groups:
            member = principal_matches(requester, Principals(groups=auto.requester_groups))
            groups = ", ".join(auto.requester_groups)
            checks.append((member, f"in {groups}", f"not in {groups}"))
        if auto.ticket_pattern:
            matches = bool(ticket) and re.fullmatch(auto.ticket_pattern, ticket) is not None
            checks.append((matches, f"ticket {ticket} matches", "no matching ticket"))
        if auto.business_hours:
            open_now = in_business_hours(local_time, risk_spec().business_hours)
            checks.append((open_now, "in business hours", "outside business hours"))
        approved = all(ok for ok, _, _ in checks)
        why = ", ".join(yes if ok else no for ok, yes, no in checks)
        outcome.note("auto_approve", approved, why)
        if approved:
            outcome.action = AUTO_APPROVE
            outcome.reason = f"auto_approve: {why}"
    return outcome


def _names(principals) -> str:
    return ", ".join([*principals.groups, *principals.users]) or "nobody"
