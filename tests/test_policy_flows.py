"""Risk policy end to end: auto-approval with no human, the extra approver for
high risk, approval steps in order, denial by policy, break-glass with its
review, a scheduled start, reminders with backoff and escalation, and alerts."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import Preferences
from audit import trail
from audit.models import AuditEvent
from broker import anomalies, lifecycle
from broker.catalog.load import parse_catalog
from broker.lifecycle import catalog_sync
from broker.models import AccessProfile, AccessRequest, Alert, BreakGlassReview, Grant
from broker.policy.approvers import can_decide
from broker.selectors.requests import can_view_request
from lib.durations import parse_duration
from tests.support.catalogs import POLICY_CATALOG
from tests.support.people import WEB
from tests.support.pg_target import wait_until


@pytest.fixture
def policy_catalog(people):
    catalog_sync(catalog=parse_catalog(POLICY_CATALOG.encode()), info=trail.SYSTEM)


def ask(user, slug, duration="1h", reason="INC-1 payouts", **kw):
    return lifecycle.access_request_submit(
        requester=user, profile=AccessProfile.objects.get(slug=slug),
        duration=parse_duration(duration), reason=reason, info=WEB, **kw,
    )  # fmt: skip


def approve(request, user, step_up):
    step_up(user)
    return lifecycle.access_request_approve(request_id=request.pk, approver=user, info=WEB)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_auto_approved_request_goes_active_with_no_human(
    policy_catalog, people, pg_target, celery_worker
):
    request = ask(people.alice, "auto-db", ticket="INC-9")
    assert request.status == "approved" and not request.decisions.exists()
    event = AuditEvent.objects.get(action="request.approved", target_id=str(request.pk))
    assert event.actor == "" and event.data["by_policy"].startswith("auto_approve: risk 20")
    assert wait_until(lambda: Grant.objects.get(request=request).status == "active", 20)


def test_a_high_risk_request_needs_the_extra_approver(policy_catalog, people, step_up):
    # Four times the default duration: +15 on top of the first time (20) makes 35 > 30.
    request = ask(people.alice, "auto-db", duration="4h", ticket="INC-9")
    assert request.status == "pending" and request.approvals_required == 2
    assert [f["name"] for f in request.risk_factors] == ["first_time", "long_duration"]
    approve(request, people.bob, step_up)
    assert AccessRequest.objects.get(pk=request.pk).status == "pending"
    approve(request, people.carol, step_up)
    assert AccessRequest.objects.get(pk=request.pk).status == "approved"


def test_steps_are_decided_in_order(policy_catalog, people, step_up):
    from broker.selectors.queue import approval_queue

    request = ask(people.alice, "steps-db")
    assert can_decide(people.bob, request) and not can_decide(people.erin, request)
    assert request in approval_queue(people.bob) and request not in approval_queue(people.erin)
    step_up(people.erin)
    with pytest.raises(lifecycle.NotAllowed, match="waits for step 1"):
        lifecycle.access_request_approve(request_id=request.pk, approver=people.erin, info=WEB)
    approve(request, people.bob, step_up)
    request.refresh_from_db()
    assert request.status == "pending"
    # Step 2 is the DBA's: another SRE cannot finish it.
    step_up(people.carol)
    with pytest.raises(lifecycle.NotAllowed, match="waits for step 2 approvers"):
        lifecycle.access_request_approve(request_id=request.pk, approver=people.carol, info=WEB)
    assert request in approval_queue(people.erin)  # step 2 is hers now
    approve(request, people.erin, step_up)
    assert AccessRequest.objects.get(pk=request.pk).status == "approved"
    assert list(request.decisions.order_by("step").values_list("step", "approver__username")) == [
        (0, "bob"), (1, "erin"),
    ]  # fmt: skip


def test_a_request_over_the_hard_threshold_is_denied_with_the_reason(policy_catalog, people):
    request = ask(people.alice, "crown-jewels", duration="30m")
    assert request.status == "denied" and request.risk_score == 70
    assert request.decision_reason.startswith("denied by policy: risk 70 is above 60")
    event = AuditEvent.objects.get(action="request.denied")
    assert event.data["by_policy"] == "deny_above" and event.actor == ""


def test_break_glass_grants_at_once_alerts_and_opens_a_review(
    policy_catalog, people, step_up, caplog
):
    with pytest.raises(lifecycle.StepUpRequired):
        ask(people.alice, "crown-jewels", "30m", "prod down", break_glass=True)
    step_up(people.alice)
    with pytest.raises(lifecycle.InvalidRequest):
        ask(people.alice, "crown-jewels", "45m", "prod down", break_glass=True)  # capped
    request = ask(people.alice, "crown-jewels", "30m", "prod down, INC-77", break_glass=True)
    assert request.status == "approved" and request.break_glass
    assert Grant.objects.get(request=request).status == "scheduled"
    assert "ALERT break-glass: alice took crown-jewels" in caplog.text
    review = BreakGlassReview.objects.get(request=request)
    assert review.due_at == request.created_at + timedelta(hours=1)
    # Nobody but an approver closes it, and the one who broke the glass never does.
    with pytest.raises(lifecycle.NotAllowed):
        lifecycle.break_glass_review_close(request_id=request.pk, reviewer=people.alice,
                                           notes="fine", info=WEB)  # fmt: skip
    with pytest.raises(lifecycle.NotAllowed):
        lifecycle.break_glass_review_close(request_id=request.pk, reviewer=people.erin,
                                           notes="fine", info=WEB)  # fmt: skip
    # Overdue: reminded once a day until closed.
    later = review.due_at + timedelta(minutes=1)
    assert lifecycle.remind_reviews(later) == 1
    assert lifecycle.remind_reviews(later + timedelta(hours=1)) == 0
    lifecycle.break_glass_review_close(request_id=request.pk, reviewer=people.bob,
                                       notes="checked the session log", info=WEB)  # fmt: skip
    assert AuditEvent.objects.get(action="review.closed").data == {"overdue": False}
    assert lifecycle.remind_reviews(later + timedelta(days=2)) == 0
    alerts = anomalies.detect()
    assert [a.kind for a in alerts] == ["break_glass"]


def test_no_break_glass_where_the_profile_has_none(policy_catalog, people, step_up):
    step_up(people.alice)
    with pytest.raises(lifecycle.NotAllowed, match="no break-glass"):
        ask(people.alice, "test-db", "30m", "prod down", break_glass=True)


def test_a_scheduled_grant_activates_at_its_start(policy_catalog, people, step_up, pg_target):
    start = timezone.now() + timedelta(minutes=5)
    request = ask(people.alice, "test-db", "30m", start_at=start)
    approve(request, people.bob, step_up)
    grant = Grant.objects.get(request=request)
    assert lifecycle.grant_activate(grant_id=grant.pk) is None  # not yet
    assert lifecycle.sweep()["activations_retried"] == 0
    assert Grant.objects.get(pk=grant.pk).status == "scheduled"
    AccessRequest.objects.filter(pk=request.pk).update(start_at=timezone.now())
    lifecycle.grant_activate(grant_id=grant.pk)
    grant.refresh_from_db()
    assert grant.status == "active"
    assert timedelta(minutes=29) < grant.expires_at - timezone.now() <= timedelta(minutes=30)


@pytest.mark.parametrize("start", [timedelta(minutes=-1), timedelta(days=8)])
def test_a_start_in_the_past_or_too_far_is_refused(policy_catalog, people, start):
    with pytest.raises(lifecycle.InvalidRequest) as error:
        ask(people.alice, "test-db", "30m", start_at=timezone.now() + start)
    assert "start_at" in error.value.fields


def test_reminders_back_off_and_escalate_once(policy_catalog, people, step_up):
    step_up(people.alice)
    # Below the hard threshold: an engineer with history (not first time) asks.
    profile = AccessProfile.objects.get(slug="crown-jewels")
    spec = dict(profile.spec)
    spec["policy"] = {**spec["policy"], "deny_above": 200}
    AccessProfile.objects.filter(pk=profile.pk).update(spec=spec)
    request = ask(people.alice, "crown-jewels", "30m")
    t0 = request.created_at
    runs = {m: lifecycle.remind_pending(t0 + timedelta(minutes=m)) for m in (14, 15, 20, 30, 59)}
    assert [run["reminded"] for run in runs.values()] == [0, 1, 0, 1, 0]
    assert not can_decide(people.erin, request)
    assert lifecycle.remind_pending(t0 + timedelta(minutes=60)) == {"reminded": 1, "escalated": 1}
    assert lifecycle.remind_pending(t0 + timedelta(minutes=61)) == {"reminded": 0, "escalated": 0}
    assert lifecycle.remind_pending(t0 + timedelta(minutes=120))["reminded"] == 1
    assert AuditEvent.objects.filter(action="request.reminder").count() == 4
    request.refresh_from_db()
    assert can_decide(people.erin, request)  # the fallback group may now decide
    assert can_view_request(people.erin, request)  # and see it on the web and the API
    approve(request, people.erin, step_up)
    assert AccessRequest.objects.get(pk=request.pk).status == "approved"


def test_rubber_stamping_is_flagged_once_with_its_evidence(policy_catalog, people, step_up):
    for number in range(5):
        request = ask(people.alice, "test-db", "10m", f"INC-{number}")
        approve(request, people.bob, step_up)
    alerts = anomalies.detect()
    stamp = [a for a in alerts if a.kind == "rubber_stamping"]
    assert len(stamp) == 1
    assert "the last 5 requests of alice were all approved by bob" in stamp[0].message
    approved = AuditEvent.objects.filter(action="request.approved").order_by("seq")
    assert stamp[0].evidence == list(approved.values_list("seq", flat=True))
    assert not [a for a in anomalies.detect() if a.kind == "rubber_stamping"]
    assert AuditEvent.objects.filter(action="alert.raised").count() == Alert.objects.count()


def test_rubber_stamping_is_recorded_once_per_pair_and_window(policy_catalog, people, step_up):
    now = timezone.now()
    for number in range(5):
        approve(ask(people.alice, "test-db", "10m", f"INC-{number}"), people.bob, step_up)
    anomalies.detect(now)
    # A sixth approval by the same approver in the same window is the same pattern.
    approve(ask(people.alice, "test-db", "10m", "INC-6"), people.bob, step_up)
    anomalies.detect(now)
    assert Alert.objects.filter(kind="rubber_stamping").count() == 1
    # The next window raises it again if the pattern goes on.
    anomalies.detect(now + anomalies.PAIR_WINDOW)
    assert Alert.objects.filter(kind="rubber_stamping").count() == 2


def test_a_quick_approval_in_the_approvers_night_is_flagged(policy_catalog, people, step_up):
    hour = timezone.now().hour
    offset = (3 - hour) % 24  # an offset that makes it 03:xx for bob
    offset = offset - 24 if offset > 14 else offset
    zone = "Etc/GMT" + (f"-{offset}" if offset > 0 else f"+{-offset}" if offset else "")
    Preferences.objects.create(user=people.bob, timezone=zone)
    request = ask(people.alice, "test-db", "10m")
    approve(request, people.bob, step_up)
    kinds = [a.kind for a in anomalies.detect()]
    assert "night_quick_approval" in kinds


def test_frequent_use_of_a_sensitive_profile_is_flagged(policy_catalog, people, step_up, pg_target):
    Group.objects.get(name="oncall")
    profile = AccessProfile.objects.get(slug="test-db")
    AccessProfile.objects.filter(pk=profile.pk).update(spec={**profile.spec, "sensitivity": 40})
    for number in range(5):
        request = ask(people.alice, "test-db", "10m", f"INC-{number}")
        approve(request, people.bob if number % 2 else people.carol, step_up)
        grant = Grant.objects.get(request=request)
        lifecycle.grant_activate(grant_id=grant.pk)
        lifecycle.grant_revoke(grant_id=grant.pk, actor=people.alice, info=WEB)
        lifecycle.grant_revoke_execute(grant_id=grant.pk)
    kinds = [a.kind for a in anomalies.detect()]
    assert "frequent_sensitive" in kinds and "rubber_stamping" not in kinds


def test_a_new_address_or_device_adds_risk(policy_catalog, people):
    from django.db import transaction

    from audit.models import Source
    from broker.models import CatalogState

    CatalogState.objects.update(risk={"weights": {"off_hours": 0}})  # new_address counts
    seen = trail.RequestInfo(source=Source.WEB, ip="198.51.100.1", user_agent="laptop")
    with transaction.atomic():
        # Where she passed MFA (a sign-in alone proves only a password: test_risk_history.py).
        trail.record(action="mfa.verified", info=seen, actor=people.alice, target=people.alice)
    test_db = AccessProfile.objects.get(slug="test-db")
    first = lifecycle.access_request_submit(
        requester=people.alice, profile=test_db, reason="INC-1", info=seen
    )
    assert "new_address" not in [f["name"] for f in first.risk_factors]
    lifecycle.access_request_cancel(request_id=first.pk, actor=people.alice, info=seen)
    kiosk = trail.RequestInfo(source=Source.WEB, ip="198.51.100.1", user_agent="kiosk")
    second = lifecycle.access_request_submit(
        requester=people.alice, profile=test_db, reason="INC-2", info=kiosk
    )
    assert "from an address or device not seen before" in [f["why"] for f in second.risk_factors]
