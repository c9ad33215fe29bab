"""Automatic containment: an anomaly whose kind the catalog's `containment`
names also locks what it is about, for the rule's time, with the alert's
events as evidence, and the security channel hears of it. Off unless named."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Preferences
from audit import trail
from audit.models import AuditEvent
from broker import anomalies, lifecycle
from broker.catalog.load import CatalogError, parse_catalog
from broker.models import AccessProfile, AccessRequest, Alert, Grant, Lock
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
    # Asked of approvers, not denied by the policy (a denied request gave nothing).
    spec = {**crown_jewels.spec, "policy": {**crown_jewels.spec["policy"], "deny_above": 200}}
    AccessProfile.objects.filter(pk=crown_jewels.pk).update(spec=spec)
    crown_jewels = AccessProfile.objects.get(pk=crown_jewels.pk)
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


def test_the_grant_a_locked_approver_waved_through_at_night_ends_too(people, step_up, catalog):
    sync(with_containment("night_quick_approval: {action: lock, scope: user, duration: 1d}"))
    offset = (3 - timezone.now().hour) % 24  # 03:xx for bob
    offset = offset - 24 if offset > 14 else offset
    zone = "Etc/GMT" + (f"-{offset}" if offset > 0 else f"+{-offset}" if offset else "")
    Preferences.objects.create(user=people.bob, timezone=zone)
    request = lifecycle.access_request_submit(
        requester=people.alice, profile=AccessProfile.objects.get(slug="test-db"),
        duration=parse_duration("1h"), reason="INC-1", info=WEB,
    )  # fmt: skip
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.pk, approver=people.bob, info=WEB)
    grant = Grant.objects.get(request=request)
    lifecycle.grant_activate(grant_id=grant.pk)
    assert [alert.kind for alert in anomalies.detect()] == ["night_quick_approval"]
    (lock,) = lifecycle.alerts_contain()
    assert lock.user == people.bob
    grant.refresh_from_db()
    assert grant.status == "revoking" and "named by alert" in grant.end_reason


def test_a_denied_high_risk_request_locks_nothing(people, catalog):
    sync(with_containment(HIGH_RISK))
    asked = lifecycle.access_request_submit(
        requester=people.alice, profile=AccessProfile.objects.get(slug="crown-jewels"),
        duration=parse_duration("30m"), reason="just looking", info=WEB,
    )  # fmt: skip
    AccessRequest.objects.filter(pk=asked.pk).update(status="denied")
    assert anomalies.detect() == [] and lifecycle.alerts_contain() == []


def test_a_scope_one_requester_sets_off_for_everyone_is_warned_about():
    catalog = parse_catalog(with_containment(HIGH_RISK).encode())
    assert any("lets one requester's own doing revoke everyone's" in w for w in catalog.warnings)
    user = parse_catalog(with_containment(BREAK_GLASS).encode())
    assert not any("one requester" in w for w in user.warnings)


def test_what_someone_typed_cannot_stop_the_lock(people, step_up, catalog):
    sync(with_containment(BREAK_GLASS))
    break_glass(people, step_up)
    (alert,) = anomalies.detect()
    # Reasons with control characters are refused at submission now; older ones stay.
    Alert.objects.filter(pk=alert.pk).update(message=alert.message + "\x1b[2K\x07")
    (lock,) = lifecycle.alerts_contain()
    assert lock.user == people.alice and lock.reason.endswith("?[2K?")


@pytest.mark.parametrize(
    "rule, message",
    [
        ("reconciler_revoked: {action: lock, scope: user, duration: 1h}",
         "containment.reconciler_revoked: it names no user to lock"),
        ("rubber_stamping: {action: lock, scope: user, duration: 1h}",
         "it can lock: nothing: a human judges it"),
        ("break_glass: {action: lock, scope: user, duration: 8d}", "between 1m and 7d"),
        ("break_glass: {action: quarantine, scope: user, duration: 1h}", "'lock'"),
        ("high_risk: {action: lock, scope: user, duration: 1h}", "high_risk, which needs it"),
        ("everything: {action: lock, scope: user, duration: 1h}", "everything"),
    ],
)  # fmt: skip
def test_a_rule_that_cannot_work_is_refused_with_its_reason(rule, message):
    with pytest.raises(CatalogError, match=message):
        parse_catalog(with_containment(rule).encode())
