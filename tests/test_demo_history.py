"""`make run`'s demo has a past: alice's 90 days, and a model trained on them that
finds her usual request usual and a stranger at night unusual."""

from datetime import datetime, timedelta

from django.core.management import call_command

from broker.models import AccessRequest, RiskModel
from broker.riskmodel import store
from broker.riskmodel.explain import explain
from broker.riskmodel.features import Observation


def test_the_demo_seeds_alices_past_and_trains_on_it(db, settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    call_command("sync_catalog", settings.AIRLOCK_CATALOG)
    call_command("seed_demo_history")
    assert "seeded" in capsys.readouterr().out
    alice = AccessRequest.objects.filter(requester__username="alice")
    assert 40 < alice.count() < 120
    assert alice.filter(grant__activated_at__isnull=False).count() == alice.count()
    assert RiskModel.objects.count() == 1

    _, model = store.current_model()
    user = str(alice.first().requester_id)
    groups = store.groups_of(alice.first().requester)
    monday = datetime(2026, 11, 30, 10, 30, tzinfo=alice.first().created_at.tzinfo)

    def scored(**changes):
        usual = {"user": user, "groups": groups, "profile": "payments-db-readonly",
                 "local_time": monday, "duration": timedelta(hours=1), "channel": "web",
                 "network": "127.0.0.0/24", "ticket": "", "recent": 0,
                 "previous_profile": "payments-db-readonly"}  # fmt: skip
        observation = Observation(**(usual | changes))
        return observation, model.score(observation)

    _, usual = scored()
    night, stranger = scored(local_time=monday.replace(hour=3), network="185.1.2.0/24",
                             channel="api", duration=timedelta(hours=4))  # fmt: skip
    # The history follows today's date, so the exact ranks move a little from day to day.
    assert usual.score < 90
    assert stranger.score >= 95
    text = explain(model, night, "alice", stranger)
    assert text.startswith(f"unusual for alice ({stranger.score}/100): ")
    assert "185.1.2.0/24 (never seen)" in text

    call_command("seed_demo_history")  # twice: nothing more
    assert "history already" in capsys.readouterr().out
    assert RiskModel.objects.count() == 1


def test_nothing_to_seed_without_the_demo(db, capsys):
    call_command("seed_demo_history")
    assert "run seed_demo and sync_catalog first" in capsys.readouterr().out
    assert not AccessRequest.objects.exists()
