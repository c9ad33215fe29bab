"""The third line of defence, run by Celery beat every few seconds."""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models import Q
from django.utils import timezone

from broker import task_names
from broker.lifecycle.common import GrantStatus, _enqueue
from broker.lifecycle.errors import TryAgainLater
from broker.lifecycle.extensions import _unapplied_extensions, grant_extend_execute
from broker.lifecycle.grants import (
    SCHEDULED_GRACE,
    grant_activate,
    grant_expire,
    grant_revoke_execute,
)
from broker.lifecycle.locks import locks_end_expired
from broker.lifecycle.requests import access_requests_expire_pending
from broker.models import Grant

logger = logging.getLogger(__name__)

# How many grants a sweep ends itself, and how many each of the batches it
# hands to the worker's other processes holds.
SWEEP_BATCH = 25
# How many overdue grants one sweep takes on, shared as above. Stalled
# revocations and activations, which it does itself, stay at 500 a sweep.
OVERDUE_LIMIT = 5000


def sweep() -> dict[str, int]:
    """The third line of defence; runs from Celery beat every few seconds.

    Expires pending requests, revokes overdue grants whose ETA task was lost,
    retries stalled revocations and activations. Each grant is claimed with
    skip_locked, so several sweepers and the ETA tasks never collide.
    """
    now = timezone.now()
    counts = {
        "requests_expired": access_requests_expire_pending(),
        "locks_ended": locks_end_expired(),
    }

    overdue = _ids(
        Grant.objects.filter(status=GrantStatus.ACTIVE, expires_at__lte=now),
        "expires_at",
        limit=OVERDUE_LIMIT,
    )
    batches = [
        overdue[start : start + SWEEP_BATCH] for start in range(0, len(overdue), SWEEP_BATCH)
    ]
    # A backlog (the worker was down, and the expiry tasks it held with it) is
    # not one process's work: every batch but the first goes to the worker's
    # other processes, which take them in order. This sweep ends the first, then
    # works through the others from the last one back, so that it meets them in
    # the middle, and ends here a batch nobody began (the worker busy, the broker
    # down). Stalled revocations are not handed out: their provider may be down,
    # and every process waiting on it would hold up the expiries of the others.
    counts["grants_handed_out"] = _hand_out(batches[1:])
    counts["grants_expired"] = sum(
        grants_expire(grant_ids=batch) for batch in batches[:1] + batches[:0:-1]
    )
    stalled_revocations = Grant.objects.filter(
        status__in=[GrantStatus.REVOKING, GrantStatus.REVOKE_FAILED]
    ).exclude(last_attempt_at__gt=now - settings.AIRLOCK_REVOKE_RETRY_AFTER)
    counts["revocations_retried"] = _each(grant_revoke_execute, _ids(stalled_revocations))
    stalled_activations = (
        Grant.objects.filter(status=GrantStatus.SCHEDULED, created_at__lte=now - SCHEDULED_GRACE)
        .filter(Q(request__start_at__isnull=True) | Q(request__start_at__lte=now))
        .exclude(last_attempt_at__gt=now - SCHEDULED_GRACE)
    )
    counts["activations_retried"] = _each(grant_activate, _ids(stalled_activations))
    # Approved extensions whose task was lost (applying one twice is a no-op).
    counts["extensions_retried"] = _each(
        grant_extend_execute, _unapplied_extensions(now), key="request_id"
    )
    return counts


def grants_expire(*, grant_ids: list, within: float | None = None) -> int:
    """Expire these overdue grants one after the other, each claimed and ended in
    a transaction of its own (a sweep's own share, or a batch it handed out).
    `within`: seconds after which the rest is left to the next sweep, which hands
    it out again, so that a batch whose provider is down (each call waiting for
    its timeout) does not hold for long a worker process other expiries need."""
    until = None if within is None else time.monotonic() + within
    return _each(grant_expire, _still_active(grant_ids), until=until)


def _hand_out(batches: list[list]) -> int:
    """Send each batch to the worker; how many grants were sent. A batch not begun
    by the next sweep is dropped, since that sweep hands out again whatever is
    still overdue: a backlog the worker cannot keep up with piles up no copies."""
    expires = timezone.now() + timedelta(seconds=settings.AIRLOCK_SWEEP_SECONDS)
    sent = 0
    for batch in batches:
        if not _enqueue(task_names.EXPIRE_GRANTS, batch, expires=expires):
            break  # the broker is down: this sweep ends them all itself
        sent += len(batch)
    return sent


def _still_active(grant_ids: list) -> list:
    """Those not ended meanwhile, as given (UUIDs, or their text from a task): one
    query, rather than a claim for each."""
    active = Grant.objects.filter(pk__in=grant_ids, status=GrantStatus.ACTIVE)
    ids = {str(pk) for pk in active.values_list("pk", flat=True)}
    return [pk for pk in grant_ids if str(pk) in ids]


def _each(step, ids, *, key: str = "grant_id", until: float | None = None) -> int:
    """Call `step` for each id (passed as `key`) until the monotonic `until`; how
    many it ended. A transient failure is recorded, and the next sweep tries
    again. Any other error is an alert, and the others still get their turn: one
    grant that cannot be handled must not keep the rest live."""
    ended = 0
    for pk in ids:
        if until is not None and time.monotonic() >= until:
            break
        try:
            ended += step(**{key: pk}) is not None
        except TryAgainLater:
            pass
        except (OperationalError, InterfaceError):
            raise  # the database is gone: nothing else would work either
        except Exception:
            logger.exception("ALERT the sweeper could not handle %s %s", key, pk)
    return ended


def _ids(queryset, order: str = "created_at", limit: int = 500) -> list:
    return list(queryset.order_by(order).values_list("pk", flat=True)[:limit])
