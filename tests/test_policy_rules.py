"""The profile's rules over the risk, each rule's true and false case, and
`explain_policy`; contradictory rules are catalog errors."""

import re
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command

from broker.catalog.load import CatalogError, parse_catalog
from broker.policy.risk import Assessment, Factor
from broker.policy.rules import ASK, AUTO_APPROVE, DENY, evaluate
from tests.support.catalogs import POLICY_CATALOG

PROFILES = {p.id: p for p in parse_catalog(POLICY_CATALOG.encode()).spec.profiles}
MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def risk(score: int) -> Assessment:
    return Assessment(score=score, factors=[Factor("first_time", score, "first time")])


@pytest.mark.parametrize(
    ("profile", "score", "ticket", "oncall", "action", "approvals"),
    [
        ("auto-db", 20, "INC-1", True, AUTO_APPROVE, 1),  # every condition holds
        ("auto-db", 26, "INC-1", True, ASK, 1),  # risk above max_risk
        ("auto-db", 20, "", True, ASK, 1),  # no ticket
        ("auto-db", 20, "CHG-1", True, ASK, 1),  # ticket not matching
        ("auto-db", 20, "INC-1", False, ASK, 1),  # not on call
        ("auto-db", 31, "INC-1", True, ASK, 2),  # above extra_approvals_above
        ("auto-db", 30, "INC-1", True, ASK, 1),  # at the threshold: no extra
        ("auto-db", 101, "INC-1", True, DENY, 1),  # above deny_above
        ("crown-jewels", 60, "", False, ASK, 1),  # at deny_above: still asked
        ("crown-jewels", 61, "", False, DENY, 1),
        ("steps-db", 0, "", False, ASK, 2),  # one per step
    ],
)
def test_rules(people, profile, score, ticket, oncall, action, approvals):
    from django.contrib.auth.models import Group

    group, _ = Group.objects.get_or_create(name="oncall")
    if oncall:
        people.alice.groups.add(group)
    outcome = evaluate(
        PROFILES[profile], requester=people.alice, assessment=risk(score), ticket=ticket,
        local_time=MONDAY_NOON,
    )  # fmt: skip
    assert (outcome.action, outcome.approvals_required) == (action, approvals)
    assert outcome.trace[0] == {
        "rule": "risk",
        "applies": True,
        "why": f"score {score}: first time",
    }


def test_the_trace_says_why(people):
    outcome = evaluate(PROFILES["auto-db"], requester=people.charlie, assessment=risk(31),
                       ticket="INC-1", local_time=MONDAY_NOON)  # fmt: skip
    assert outcome.trace[1:] == [
        {"rule": "deny_above", "applies": False, "why": "31 ≤ 100"},
        {"rule": "extra_approvals_above", "applies": True, "why": "31 > 30: 1 more approval(s)"},
    ]


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("{auto_approve: {max_risk: 50}, deny_above: 40}", "auto-approved and denied at once"),
        ("{auto_approve: {max_risk: 50}, extra_approvals_above: {risk: 30}}",
         "needing more approvers would be auto-approved"),
        ("{steps: [{approvers: {groups: []}, approvals: 1}]}", "steps[1] names no approvers"),
        ("{steps: [{approvers: {groups: [dba]}, approvals: 2}]}",
         "policy.steps[1]: 2 approvals required but only 1 approver(s) declared"),
        ("{break_glass: {max_duration: 5h}}", "break_glass.max_duration: longer than"),
        ("{reminders: {escalate_after: 1h}}", "escalate_after and escalate_to go together"),
        ("{auto_approve: {max_risk: 5, ticket_pattern: '(['}}", "not a valid regular expression"),
        ("{deny_above: -1}", "deny_above"),
    ],
)  # fmt: skip
def test_contradictory_or_broken_rules_are_catalog_errors(policy, message):
    text = POLICY_CATALOG.replace(
        "    policy:\n      steps:\n        - {approvers: {groups: [sre]}, approvals: 1}\n"
        "        - {approvers: {groups: [dba]}, approvals: 1}\n",
        f"    policy: {policy}\n",
    )
    assert text != POLICY_CATALOG
    with pytest.raises(CatalogError, match=re.escape(message)):
        parse_catalog(text.encode())


@pytest.fixture
def policy_catalog(people):
    from audit import trail
    from broker.lifecycle import catalog_sync

    catalog_sync(catalog=parse_catalog(POLICY_CATALOG.encode()), info=trail.SYSTEM)


def test_overlapping_steps_that_could_strand_a_later_step_are_refused():
    # carol is both an SRE (step 1) and the only security approver (step 2).
    text = POLICY_CATALOG.replace("  security: [carol, erin]\n", "  security: [carol]\n")
    text = text.replace(
        "        - {approvers: {groups: [dba]}, approvals: 1}\n",
        "        - {approvers: {groups: [security]}, approvals: 1}\n",
    )
    with pytest.raises(CatalogError, match=r"if carol decide\(s\) an earlier step, only 0"):
        parse_catalog(text.encode())
    # Two SREs for two SRE steps is fine: each decides one.
    parse_catalog(
        text.replace("groups: [security]}, approvals", "groups: [sre]}, approvals").encode()
    )


def test_explain_policy_prints_the_decision_without_submitting(policy_catalog):
    from broker.models import AccessRequest

    out = StringIO()
    call_command("explain_policy", "--user", "alice", "--profile", "crown-jewels",
                 "--duration", "30m", stdout=out)  # fmt: skip
    text = out.getvalue()
    assert "alice asks for crown-jewels for 30m" in text
    assert "risk 70" in text
    assert "+50  sensitivity: crown-jewels is sensitive (50/50)" in text
    assert "+20  first_time: first time for crown-jewels" in text
    assert "[yes] deny_above: 70 > 60" in text
    assert "decision: DENIED by policy" in text
    out = StringIO()
    call_command("explain_policy", "--user", "alice", "--profile", "auto-db",
                 "--ticket", "INC-7", stdout=out)  # fmt: skip
    assert "[yes] auto_approve: risk 20 ≤ 25, in oncall, ticket INC-7 matches" in out.getvalue()
    assert "decision: APPROVED by policy" in out.getvalue()
    assert not AccessRequest.objects.exists()


def test_explain_policy_errors(policy_catalog):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no user 'zoe'"):
        call_command("explain_policy", "--user", "zoe", "--profile", "auto-db")
    with pytest.raises(CommandError, match="no enabled profile"):
        call_command("explain_policy", "--user", "alice", "--profile", "nope")
    out = StringIO()
    call_command("explain_policy", "--user", "charlie", "--profile", "auto-db", stdout=out)
    assert "charlie may not request auto-db" in out.getvalue()
