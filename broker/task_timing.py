"""How long Celery tasks wait in the queue and run, for /metrics.

The publisher stamps each message with the time it was sent; the worker, when
it starts a task, measures the wait from that stamp (or from the task's ETA, a
deliberate wait that is not latency) and, when the task ends, its run time.
Each worker process adds its counts up in memory and writes them to the
TaskTiming histogram at most every AIRLOCK_TASK_TIMING_FLUSH_SECONDS, so a busy
worker pays one small write every few seconds, not one per task.
"""

import logging
import math
import threading
import time
from collections import defaultdict
from datetime import datetime

from celery import signals
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F

from broker.models import TaskTiming

logger = logging.getLogger(__name__)

SENT_AT = "airlock_sent_at"
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, math.inf)

_lock = threading.Lock()
_pending: dict[tuple[str, str, float], list[float]] = defaultdict(lambda: [0, 0.0])
_started: dict[str, float] = {}
_flushed_at = time.monotonic()


def connect() -> None:
    signals.before_task_publish.connect(_stamp, weak=False)
    signals.task_prerun.connect(_started_task, weak=False)
    signals.task_postrun.connect(_ended_task, weak=False)
    # Prefork children end with the first; the threads and solo pools only with the second.
    signals.worker_process_shutdown.connect(lambda **_: flush(), weak=False)
    signals.worker_shutdown.connect(lambda **_: flush(), weak=False)


def _stamp(headers=None, **_) -> None:
    if headers is not None:
        headers[SENT_AT] = time.time()


def _started_task(task_id=None, task=None, **_) -> None:
    request = task.request
    sent_at = getattr(request, SENT_AT, None)
    if sent_at is None and isinstance(request.headers, dict):
        sent_at = request.headers.get(SENT_AT)
    if type(sent_at) in (int, float) and math.isfinite(sent_at):  # what _stamp wrote, only
        due = max(float(sent_at), _timestamp(request.eta))
        observe(task.name, TaskTiming.Kind.WAIT, max(0.0, time.time() - due))
    _started[task_id] = time.monotonic()


def _ended_task(task_id=None, task=None, **_) -> None:
    started = _started.pop(task_id, None)
    if started is not None:
        observe(task.name, TaskTiming.Kind.RUN, time.monotonic() - started)
    if time.monotonic() - _flushed_at >= settings.AIRLOCK_TASK_TIMING_FLUSH_SECONDS:
        flush()


def _timestamp(eta) -> float:
    try:
        eta = datetime.fromisoformat(eta) if isinstance(eta, str) else eta
    except ValueError:
        return 0.0
    return eta.timestamp() if isinstance(eta, datetime) else 0.0


def observe(task: str, kind: str, seconds: float) -> None:
    le = next(bound for bound in BUCKETS if seconds <= bound)
    with _lock:
        counted = _pending[(task, kind, le)]
        counted[0] += 1
        counted[1] += seconds


def flush() -> None:
    """Add what this process counted to the histogram (kept for the next try if
    the database is away)."""
    global _flushed_at
    with _lock:
        counts = dict(_pending)
        _pending.clear()
        _flushed_at = time.monotonic()
    try:
        with transaction.atomic():
            for (task, kind, le), (n, seconds) in sorted(counts.items()):
                _add(task, kind, le, n, seconds)
    except DatabaseError:
        logger.warning("task timings not written; kept for the next flush", exc_info=True)
        with _lock:
            for key, (n, seconds) in counts.items():
                _pending[key][0] += n
                _pending[key][1] += seconds


def _add(task: str, kind: str, le: float, n: int, seconds: float) -> None:
    bucket = TaskTiming.objects.filter(task=task, kind=kind, le=le)
    if bucket.update(count=F("count") + n, seconds=F("seconds") + seconds):
        return
    try:
        with transaction.atomic():
            TaskTiming.objects.create(task=task, kind=kind, le=le, count=n, seconds=seconds)
    except IntegrityError:  # another worker created it first
        bucket.update(count=F("count") + n, seconds=F("seconds") + seconds)
