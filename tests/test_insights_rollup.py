"""The daily roll-up behind /insights/: rolled days read exactly as the raw rows
do, for every slice; the last days are recomputed at each roll-up while older
ones are kept; today is never rolled; a real worker runs it from beat's task."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection

from airlock.celery import app
from broker import rollup, task_names
from broker.models import AccessRequest, InsightsDay, InsightsRolledDay
from broker.selectors.insights import Slice, insights
from tests.support.activity import NOW, past_request, seed_known_days
from tests.support.pg_target import wait_until

SLICES = [
    {"days": 7},
    {"days": 90},
    {"days": 30, "profile": "test-db"},
    {"days": 30, "channel": "slack"},
    {"days": 30, "group": "engineers"},
    {"days": 30, "group": "sre"},
]


def shown(**slice_) -> dict:
    found = insights(Slice(now=NOW, **slice_))
    return {
        "tables": {name: table.rows for name, table in found.tables.items()},
        "held": found.held_hours,
        "standing": found.standing_hours,
    }


@pytest.fixture
def history(people, catalog):
    seed_known_days(people, catalog)


def test_rolled_days_read_as_the_raw_rows_do(history):
    before = [shown(**slice_) for slice_ in SLICES]
    assert rollup.roll_up(NOW) == 90
    assert InsightsRolledDay.objects.count() == 90
    assert not InsightsRolledDay.objects.filter(day=NOW.date()).exists()  # today stays live
    assert InsightsDay.objects.filter(team="").count() == 3  # (day, profile, channel) active
    assert InsightsDay.objects.filter(team="engineers").count() == 3  # alice's team
    assert [shown(**slice_) for slice_ in SLICES] == before


def test_the_last_days_are_recomputed_and_older_ones_kept(history, people, catalog):
    rollup.roll_up(NOW)
    assert rollup.roll_up(NOW) == rollup.RECOMPUTE_DAYS  # nothing else changed
    # A request of three days ago is decided late; one of twenty days ago is
    # changed behind the roll-up's back: only the first shows.
    late = past_request(catalog["test-db"], people.alice, NOW - timedelta(days=3), status="pending")
    old = AccessRequest.objects.get(created_at__lt=NOW - timedelta(days=30))
    rollup.roll_up(NOW)
    AccessRequest.objects.filter(pk=late.pk).update(status="cancelled")
    AccessRequest.objects.filter(pk=old.pk).update(status="denied")
    rollup.roll_up(NOW)
    rows = {row[0]: row for row in insights(Slice(now=NOW, days=90)).tables["outcomes"].rows}
    cancelled = 6
    assert rows[late.created_at.date()][cancelled] == 1
    assert rows[old.created_at.date()][1:3] == [1, 0]  # still approved, as rolled


def test_a_day_rolled_long_ago_leaves_the_history(history):
    rollup.roll_up(NOW - timedelta(days=30))
    assert InsightsRolledDay.objects.filter(day__lt=NOW.date() - timedelta(days=90)).exists()
    rollup.roll_up(NOW)
    assert not InsightsRolledDay.objects.filter(day__lt=NOW.date() - timedelta(days=90)).exists()


@pytest.mark.django_db(transaction=True)
def test_beat_schedules_it_and_a_worker_runs_it(celery_worker, settings, people, catalog):
    assert settings.CELERY_BEAT_SCHEDULE["insights"]["task"] == task_names.ROLL_UP_INSIGHTS
    app.send_task(task_names.ROLL_UP_INSIGHTS)
    assert wait_until(lambda: InsightsRolledDay.objects.count() == 90, timeout=30)


@pytest.mark.django_db(transaction=True)
def test_two_roll_ups_at_once_take_turns(people, catalog, monkeypatch):
    seed_known_days(people, catalog)
    compute = rollup.day_figures

    def slowly(*args):  # both would be computing at once without the lock
        time.sleep(0.5)
        return compute(*args)

    monkeypatch.setattr(rollup, "day_figures", slowly)
    errors = []

    def run():
        try:
            rollup.roll_up(NOW)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert InsightsRolledDay.objects.count() == 90
