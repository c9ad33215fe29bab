"""Celery task latency for /metrics, measured by a real worker: how long each
task waited in the queue (from its publication, or from its ETA when it was
scheduled on purpose) and how long it ran, as histograms per task."""

import time

import pytest
from django.db import DatabaseError

from airlock.celery import app
from broker import task_names, task_timing
from broker.models import TaskTiming
from tests.support.pg_target import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def every_task_written(settings):
    settings.AIRLOCK_TASK_TIMING_FLUSH_SECONDS = 0


def counted(task: str, kind: str) -> int:
    return sum(TaskTiming.objects.filter(task=task, kind=kind).values_list("count", flat=True))


def test_a_worker_times_the_wait_and_the_run(celery_worker, every_task_written):
    app.send_task(task_names.SWEEP)
    assert wait_until(lambda: counted(task_names.SWEEP, "run") == 1, timeout=20)
    assert counted(task_names.SWEEP, "wait") == 1
    assert TaskTiming.objects.get(task=task_names.SWEEP, kind="wait").le <= 5.0


def test_a_task_scheduled_for_later_waits_from_its_eta(celery_worker, every_task_written):
    sent = time.monotonic()
    app.send_task(task_names.SWEEP, countdown=3)
    assert wait_until(lambda: counted(task_names.SWEEP, "wait") == 1, timeout=20)
    assert time.monotonic() - sent >= 3
    wait = TaskTiming.objects.get(task=task_names.SWEEP, kind="wait")
    assert wait.seconds < 2.5, "the three seconds to the ETA are not latency"


def test_the_metrics_show_them(celery_worker, every_task_written, monkeypatch, client):
    from prometheus_client.parser import text_string_to_metric_families

    app.send_task(task_names.SWEEP)
    assert wait_until(lambda: counted(task_names.SWEEP, "run") == 1, timeout=20)
    monkeypatch.setenv("AIRLOCK_METRICS_TOKEN", "t")
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    task = ("task", task_names.SWEEP)
    assert samples[("airlock_celery_task_run_seconds_count", (task,))] == 1
    assert samples[("airlock_celery_task_wait_seconds_bucket", (("le", "+Inf"), task))] == 1
    assert samples[("airlock_celery_task_run_seconds_sum", (task,))] > 0
    queues = {labels for name, labels in samples if name == "airlock_celery_queue_depth"}
    assert queues == {(("queue", "celery"),), (("queue", "slack"),)}


def test_counts_wait_in_memory_until_the_database_takes_them(db, monkeypatch):
    task_timing.observe("t", "run", 0.3)
    task_timing.observe("t", "run", 0.4)
    monkeypatch.setattr(task_timing, "_add", lambda *a: (_ for _ in ()).throw(DatabaseError()))
    task_timing.flush()
    assert not TaskTiming.objects.exists()
    monkeypatch.undo()
    task_timing.flush()
    bucket = TaskTiming.objects.get(task="t")
    assert (bucket.le, bucket.count, round(bucket.seconds, 3)) == (0.5, 2, 0.7)
