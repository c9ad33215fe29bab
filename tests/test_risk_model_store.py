"""The model in Airlock: trained from granted requests by a beat task, versioned
and on record, asked at each submission, and named in each decision's event."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.utils import timezone

from audit import trail
from audit.models import AuditEvent, Source
from broker import lifecycle
from broker.catalog.load import parse_catalog
from broker.lifecycle import catalog_sync
from broker.models import AccessProfile, AccessRequest, CatalogState, RiskLabel, RiskModel
from broker.riskmodel import store
from broker.tasks import train_risk_model
from lib.durations import parse_duration
from tests.support.activity import past_grant, past_request
from tests.support.catalogs import POLICY_CATALOG
from tests.support.people import WEB

NIGHT_ROBBER = trail.RequestInfo(source=Source.API, ip="185.1.2.3", user_agent="curl")


@pytest.fixture
def auto_db(people):
    catalog_sync(catalog=parse_catalog(POLICY_CATALOG.encode()), info=trail.SYSTEM)
    people.alice.groups.add(Group.objects.get(name="oncall"))
    return AccessProfile.objects.get(slug="auto-db")


def habit(people, profile, *, days=40, hour=None):
    """alice asks every day at this hour (now's, by default) from the office, via the web;
    each request granted by bob and held."""
    now = timezone.now()
    hour = now.hour if hour is None else hour
    for day in range(days, 0, -1):
        # At the top of the hour: a habit later in the hour than now would put
        # yesterday's request inside today's last 24 hours, which the habit never
        # had (the suite failed in the first minutes of an hour).
        created = (now - timedelta(days=day)).replace(hour=hour, minute=0, second=0, microsecond=0)
        asked = past_request(profile, people.alice, created, approver=people.bob)
        AccessRequest.objects.filter(pk=asked.pk).update(network="203.0.113.0/24")
        past_grant(asked, created + timedelta(minutes=10), ended=created + timedelta(hours=1))


def ask(people, info=WEB, duration="1h"):
    return lifecycle.access_request_submit(
        requester=people.alice, profile=AccessProfile.objects.get(slug="auto-db"),
        duration=parse_duration(duration), reason="INC-1 payouts", ticket="INC-1", info=info,
    )  # fmt: skip


def test_no_history_no_model_and_no_score(auto_db, people):
    assert store.retrain(timezone.now()) is None
    asked = ask(people)
    assert asked.unusual_score is None and asked.risk_model_id is None
    assert "unusual" not in [f["name"] for f in asked.risk_factors]


def test_training_is_versioned_and_on_record(auto_db, people):
    habit(people, auto_db)
    version = train_risk_model()
    model = RiskModel.objects.get(pk=version)
    assert model.observations == 40
    event = AuditEvent.objects.get(action="risk_model.trained")
    assert event.target_id == str(version) and event.data["observations"] == 40
    assert event.data["history_sha256"] == model.history_sha256
    # The same history: the same version, nothing new on record.
    assert train_risk_model() == version
    assert AuditEvent.objects.filter(action="risk_model.trained").count() == 1


def test_only_access_that_was_held_and_not_marked_unusual_is_learnt(auto_db, people):
    habit(people, auto_db, days=10)
    refused = past_request(auto_db, people.alice, timezone.now() - timedelta(hours=5),
                           status="denied", approver=people.bob, decision="deny")  # fmt: skip
    marked = AccessRequest.objects.filter(grant__isnull=False).order_by("created_at").first()
    RiskLabel.objects.create(request=marked, labelled_by=people.bob, label="unusual",
                             created_at=timezone.now())  # fmt: skip
    learnt = store.history(since=timezone.now() - timedelta(days=90), until=timezone.now())
    assert len(learnt) == 9  # ten held, one marked unusual; the denied one never
    assert refused.pk not in {o for o in learnt}
    assert learnt[0].previous_profile == "auto-db" and learnt[0].network == "203.0.113.0/24"


def test_the_usual_request_scores_low_and_a_night_robber_high(auto_db, people):
    habit(people, auto_db)
    version = train_risk_model()

    usual = ask(people)
    assert usual.status == "approved"  # auto-approved: on call, a ticket, little risk
    robbed = ask(people, info=NIGHT_ROBBER, duration="4h")

    assert usual.risk_model_id == robbed.risk_model_id == version
    assert usual.unusual_score < 90 and "unusual" not in [f["name"] for f in usual.risk_factors]
    factor = next(f for f in robbed.risk_factors if f["name"] == "unusual")
    assert robbed.unusual_score > 90 and factor["points"] > 0
    assert factor["why"].startswith(f"unusual for alice ({robbed.unusual_score}/100): ")
    assert "from 185.1.2.0/24 (never seen)" in factor["why"]
    submitted = AuditEvent.objects.get(action="request.submitted", target_id=str(robbed.pk))
    assert submitted.data["risk_model"] == version
    assert submitted.data["unusual"] == robbed.unusual_score


def test_each_decision_names_the_model_and_its_score(auto_db, people, step_up):
    habit(people, auto_db)
    version = train_risk_model()
    robbed = ask(people, info=NIGHT_ROBBER, duration="4h")
    assert robbed.status == "pending"
    step_up(people.bob)
    lifecycle.access_request_deny(request_id=robbed.pk, approver=people.bob, reason="not you",
                                  info=WEB)  # fmt: skip
    for action in ("request.decision.deny", "request.denied"):
        event = AuditEvent.objects.get(action=action, target_id=str(robbed.pk))
        assert event.data["risk_model"] == version
        assert event.data["unusual"] == robbed.unusual_score


def test_auto_approval_can_require_a_usual_request(auto_db, people):
    catalog = POLICY_CATALOG.replace(
        'auto_approve: {max_risk: 25, requester_groups: [oncall], ticket_pattern: "^INC-[0-9]+$"}',
        "auto_approve: {max_risk: 25, max_unusual: 80, requester_groups: [oncall]}",
    )
    assert catalog != POLICY_CATALOG
    catalog_sync(catalog=parse_catalog(catalog.encode()), info=trail.SYSTEM)
    CatalogState.objects.update(risk={"weights": {"off_hours": 0, "first_time": 0}})

    untrained = ask(people)
    assert untrained.status == "pending"  # no model yet: nobody says it is usual
    assert any(s["rule"] == "auto_approve" and "no trained model" in s["why"]
               for s in untrained.policy_trace)  # fmt: skip
    lifecycle.access_request_cancel(request_id=untrained.pk, actor=people.alice, info=WEB)
    # Long ago: a second request within 24 hours would itself be unusual for her.
    AccessRequest.objects.filter(pk=untrained.pk).update(
        created_at=timezone.now() - timedelta(days=60)
    )

    habit(people, auto_db)
    train_risk_model()
    trained = ask(people)
    assert trained.status == "approved", (trained.unusual_score, trained.policy_trace)


def test_the_train_command_says_what_it_did(auto_db, people, capsys):
    call_command("train_risk_model")
    assert "no requests to learn from yet" in capsys.readouterr().out
    habit(people, auto_db, days=5)
    call_command("train_risk_model")
    assert "risk model v" in capsys.readouterr().out


def test_access_nobody_approved_or_that_someone_ended_is_not_learnt(auto_db, people):
    habit(people, auto_db, days=3)
    now = timezone.now()
    self_approved = past_request(auto_db, people.alice, now - timedelta(hours=9))  # the policy
    past_grant(self_approved, now - timedelta(hours=9), ended=now - timedelta(hours=8))
    caught = past_request(auto_db, people.alice, now - timedelta(hours=7), approver=people.bob)
    past_grant(caught, now - timedelta(hours=7), ended=now - timedelta(hours=6),
               end_reason="revoked by carol")  # fmt: skip
    emergency = past_request(auto_db, people.alice, now - timedelta(hours=5),
                             approver=people.alice, break_glass=True)  # fmt: skip
    past_grant(emergency, now - timedelta(hours=5))
    given_back = past_request(auto_db, people.alice, now - timedelta(hours=3), approver=people.bob)
    past_grant(given_back, now - timedelta(hours=3), ended=now - timedelta(hours=2),
               end_reason="relinquished by alice")  # fmt: skip

    learnt = store.history(since=now - timedelta(days=90), until=now)

    assert len(learnt) == 4  # the three days of habit and the grant given back
    # Whatever became of them, the three earlier today count as asked.
    assert learnt[-1].previous_profile == "auto-db" and learnt[-1].recent >= 3


def test_when_nothing_is_left_to_learn_the_model_retires(auto_db, people):
    habit(people, auto_db, days=5)
    train_risk_model()
    for asked in AccessRequest.objects.all():
        RiskLabel.objects.create(request=asked, labelled_by=people.bob, label="unusual",
                                 created_at=timezone.now())  # fmt: skip
    retired = store.retrain(timezone.now())
    assert retired.observations == 0
    assert store.current_model() is None
    assert ask(people).unusual_score is None  # nobody is "usual" by a stale model
