"""The sweeper after an outage: a backlog of overdue grants (their expiry tasks
lost with a killed worker) is shared with the worker's other processes, and is
ended once each, whoever gets to a grant first."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from airlock.celery import app
from audit.models import AuditEvent
from broker import lifecycle
from broker.lifecycle import sweeper
from broker.models import Grant
from broker.tasks import expire_grants
from lib.providers import get_provider
from tests.support.grants import active_grant, credential_dsn, revoke_failing_for
from tests.support.people import WEB
from tests.support.pg_target import can_login

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def backlog(pg_target, people, submit, step_up, monkeypatch):
    """Nine active grants, all overdue, whose expiry tasks were lost; batches of 4."""
    monkeypatch.setattr(sweeper, "SWEEP_BATCH", 4)
    grants = [active_grant(people, submit, step_up) for _ in range(9)]
    step_up(people.alice)
    credentials = [
        lifecycle.grant_reveal(grant_id=grant.pk, user=people.alice, info=WEB)
        for grant in (grants[0], grants[-1])
    ]
    assert all(can_login(credential_dsn(credential)) for credential in credentials)
    app.control.purge()
    Grant.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    return grants, credentials


def assert_each_ended_once(grants, credentials) -> None:
    provider = get_provider("postgres.role")
    for grant in grants:
        grant.refresh_from_db()
        assert (grant.status, grant.end_reason, grant.revoke_attempts) == ("revoked", "expired", 1)
        assert not provider.check(grant.handle)
        events = AuditEvent.objects.filter(target_id=str(grant.pk), action="grant.expired")
        assert events.count() == 1
    assert not any(can_login(credential_dsn(credential)) for credential in credentials)


def test_a_backlog_is_shared_with_the_worker_and_each_grant_ends_once(backlog, request):
    grants, credentials = backlog
    request.getfixturevalue("celery_worker")  # started after the expiry tasks were lost

    counts = lifecycle.sweep()

    assert counts["grants_handed_out"] == 5  # all but the first batch of 4
    deadline = time.monotonic() + 30
    while Grant.objects.filter(status="active").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert_each_ended_once(grants, credentials)


def test_with_nobody_to_take_the_batches_the_sweep_ends_them_all_itself(backlog):
    grants, credentials = backlog

    counts = lifecycle.sweep()  # no worker: the batches wait in the queue

    assert (counts["grants_handed_out"], counts["grants_expired"]) == (5, 9)
    assert_each_ended_once(grants, credentials)
    # The batches, run late, find nothing left to do and record nothing.
    assert expire_grants.apply(args=[[str(grant.pk) for grant in grants]]).get() == 0
    assert_each_ended_once(grants, credentials)


def test_a_broker_that_refuses_the_batches_leaves_them_to_the_sweep(backlog, monkeypatch):
    grants, credentials = backlog

    def refuse(*args, **kwargs):
        raise ConnectionError("the broker is down")

    monkeypatch.setattr(app, "send_task", refuse)
    counts = lifecycle.sweep()

    assert (counts["grants_handed_out"], counts["grants_expired"]) == (0, 9)
    assert_each_ended_once(grants, credentials)


def test_a_handed_out_batch_is_dropped_once_the_next_sweep_is_due(backlog, settings, monkeypatch):
    """Otherwise a backlog the worker cannot keep up with would pile up copies."""
    settings.AIRLOCK_SWEEP_SECONDS = 15
    sent = []
    real_send = app.send_task

    def capture(name, args=None, **options):
        sent.append((name, args, options))
        return real_send(name, args=args, **options)

    monkeypatch.setattr(app, "send_task", capture)
    before = timezone.now()
    lifecycle.sweep()

    batches = [(args, options) for name, args, options in sent if name.endswith("expire_grants")]
    assert [len(args[0]) for args, _ in batches] == [4, 1]
    for _, options in batches:
        assert 15 <= (options["expires"] - before).total_seconds() < 16


def test_a_batch_whose_provider_is_slow_stops_at_the_next_sweep(backlog, settings, monkeypatch):
    """A provider that is down makes each call wait for its timeout: a batch must
    not hold a worker process for 25 of them while other expiries wait."""
    grants, _ = backlog
    settings.AIRLOCK_SWEEP_SECONDS = 0.7
    provider = get_provider("postgres.role")
    real_revoke = provider.revoke

    def slow_revoke(handle):
        time.sleep(0.5)
        return real_revoke(handle)

    monkeypatch.setattr(provider, "revoke", slow_revoke)
    batch = [str(grant.pk) for grant in grants[:5]]

    ended = expire_grants.apply(args=[batch]).get()

    assert 1 <= ended < 5  # two, unless this machine is very slow
    assert Grant.objects.filter(pk__in=batch, status="active").count() == 5 - ended
    monkeypatch.setattr(provider, "revoke", real_revoke)
    lifecycle.sweep()  # the next sweep takes on what the batch left
    assert not Grant.objects.filter(status="active").exists()


def test_a_grant_that_cannot_be_handled_leaves_the_others_to_be_revoked(
    backlog, monkeypatch, caplog
):
    grants, credentials = backlog
    revoke_failing_for(
        monkeypatch, grants[0].handle["role"], KeyError("a handle this code no longer understands")
    )

    counts = lifecycle.sweep()

    assert counts["grants_expired"] == 8
    assert Grant.objects.get(pk=grants[0].pk).status == "active"
    assert_each_ended_once(grants[1:], credentials[1:])
    assert f"ALERT the sweeper could not handle grant_id {grants[0].pk}" in caplog.text
