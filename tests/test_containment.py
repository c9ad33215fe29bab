"""Automatic containment: an anomaly whose kind the catalog's `containment`
names also locks what it is about, for the rule's time, with the alert's
events as evidence, and the security channel hears of it. Off unless named."""

from datetime import timedelta

import pytest

from audit import trail
from audit.models import AuditEvent
from broker import anomalies, lifecycle
from broker.catalog.load import CatalogError, parse_catalog
from broker.models import AccessProfile, Alert, Grant, Lock
from lib.durations import parse_duration
from tests.support.catalogs import POLICY_CATALOG
from tests.support.grants import credential_works
from tests.support.people import WEB
from tests.support.slack_requests import deliver_notifications

pytestmark = pytest.mark.usefixtures("pg_target")

BREAK_GLASS = "break_glass: {action: lock, scope: user, duration: 2h}"
HIGH_RISK = "high_risk: {action: lock, scope: profile, duration: 30m, risk_from: 40}"


def sync(text: str) -> None:
    lifecycle.catalog_sync(catalog=parse_catalog(text.encode()), info=trail.SYSTEM)


def with_containment(*rules: str) -> str:
    section = "containment:\n" + "".join(f"  {rule}\n" for rule in rules)
    return POLICY_CATALOG.replace("profiles:\n", section + "profiles:\n", 1)


def break_glass(people, step_up) -> Grant:
    step_up(people.alice)
    request = lifecycle.access_request_submit(
        requester=people.alice, profile=AccessProfile.objects.get(slug="crown-jewels"),
        duration=parse_duration("30m"), reason="prod down", break_glass=True, info=WEB,
    )  # fmt: skip
    lifecycle.grant_activate(grant_id=request.grant.pk)
    return Grant.objects.get(request=request)


def test_break_glass_locks_the_user_and_takes_the_access_away(
    people, step_up, pg_target, settings, slack
):
    settings.SLACK_SECURITY_CHANNEL = "#security"
    sync(with_containment(BREAK_GLASS))
    grant = break_glass(people, step_up)
    credential = lifecycle.grant_reveal(grant_id=grant.pk, user=people.alice, info=WEB)
    assert credential_works(credential, pg_target, None)
    seen = deliver_notifications()

    (alert,) = anomalies.detect()
    assert alert.subjects == {
        "user": "alice", "profile": "crown-jewels", "target": "postgres:AIRLOCK_PG_DSN_TEST",
    }  # fmt: skip
    (lock,) = lifecycle.alerts_contain()
    assert (lock.scope, lock.user, lock.placed_by) == ("user", people.alice, None)
    assert lock.evidence == alert.evidence and lock.ends_at - lock.placed_at == timedelta(hours=2)
    assert lock.reason.startswith("automatic containment (break_glass): alice used break-glass")
    assert Alert.objects.get().lock == lock

    lifecycle.grant_revoke_execute(grant_id=grant.pk)
    assert not credential_works(credential, pg_target, None)
    placed = AuditEvent.objects.get(action="lock.placed")
    assert placed.actor == "" and placed.data["evidence"] == alert.evidence

    deliver_notifications(seen)
    paged = [m for m in slack.made("chat.postMessage") if m["channel"] == "#security"]
    assert any("Automatic containment locked user alice until" in m["text"] for m in paged)
    assert lifecycle.alerts_contain() == []  # each alert is looked at once


def test_a_high_risk_request_locks_its_profile(people, catalog):
    sync(with_containment(HIGH_RISK))
    crown_jewels = AccessProfile.objects.get(slug="crown-jewels")
    asked = lifecycle.access_request_submit(
        requester=people.alice, profile=crown_jewels, duration=parse_duration("30m"),
        reason="INC-9", info=WEB,
    )  # fmt: skip
    assert asked.risk_score >= 40
    anomalies.detect()
    (lock,) = lifecycle.alerts_contain()
    assert (lock.scope, lock.profile) == ("profile", crown_jewels)
    submitted = AuditEvent.objects.get(action="request.submitted", target_id=str(asked.pk))
    assert lock.evidence == [submitted.seq]


def test_without_a_rule_an_alert_locks_nothing(people, step_up, catalog):
    sync(POLICY_CATALOG)
    break_glass(people, step_up)
    anomalies.detect()
    assert lifecycle.alerts_contain() == [] and not Lock.objects.exists()
    assert Alert.objects.get().containment_checked_at is not None


def test_no_second_lock_where_one_holds(people, step_up, catalog):
    # Break-glass on crown-jewels is both a break_glass and a high_risk alert.
    sync(with_containment(BREAK_GLASS, HIGH_RISK.replace("scope: profile", "scope: user")))
    break_glass(people, step_up)
    assert sorted(alert.kind for alert in anomalies.detect()) == ["break_glass", "high_risk"]
    assert len(lifecycle.alerts_contain()) == 1
    assert Lock.objects.get().user == people.alice
    assert not Alert.objects.filter(containment_checked_at=None).exists()


@pytest.mark.parametrize(
    "rule, message",
    [
        ("reconciler_revoked: {action: lock, scope: user, duration: 1h}",
         "containment.reconciler_revoked: it names no user to lock"),
        ("break_glass: {action: lock, scope: user, duration: 8d}", "between 1m and 7d"),
        ("break_glass: {action: quarantine, scope: user, duration: 1h}", "'lock'"),
        ("high_risk: {action: lock, scope: user, duration: 1h}", "high_risk, which needs it"),
        ("everything: {action: lock, scope: user, duration: 1h}", "everything"),
    ],
)  # fmt: skip
def test_a_rule_that_cannot_work_is_refused_with_its_reason(rule, message):
    with pytest.raises(CatalogError, match=message):
        parse_catalog(with_containment(rule).encode())
