"""Airlock's state for Prometheus, read from the database at each scrape.

Requests, decisions, grants and audit events are never deleted, so counting
them gives counters that only grow; what is live now is a gauge. A handful of
aggregate queries per scrape, whatever the number of rows (indexed columns).
"""

import math
from datetime import timedelta
from itertools import groupby

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from audit.actions import Action
from audit.models import AuditChainHead, AuditEvent
from broker.models import AccessRequest, Alert, Approval, Grant, TaskTiming
from broker.policy.locks import holding_locks

# Seconds from a grant's expiry to its revocation at the source.
LAG_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 300)
PROVIDER_FAILURES = {
    Action.GRANT_ACTIVATION_RETRY: "activation_retry",
    Action.GRANT_FAILED: "activation_failed",
    Action.GRANT_REVOKE_RETRY: "revocation_retry",
    Action.GRANT_REVOKE_FAILED: "revocation_failed",
}
LIVE = [Grant.Status.SCHEDULED, Grant.Status.ACTIVE, Grant.Status.REVOKING]


class AirlockCollector:
    def collect(self):
        yield self._requests()
        yield self._decisions()
        yield from self._grants()
        yield self._revocation_lag()
        yield self._provider_failures()
        yield self._alerts()
        yield from self._task_timings()
        yield from self._now()

    def _requests(self):
        return _counted_by(
            CounterMetricFamily("airlock_requests", "Access requests by their status now",
                                labels=["status"]),
            AccessRequest.objects, "status", AccessRequest.Status.values,
        )  # fmt: skip

    def _decisions(self):
        return _counted_by(
            CounterMetricFamily("airlock_decisions", "Approvers' decisions", labels=["decision"]),
            Approval.objects, "decision", Approval.Decision.values,
        )  # fmt: skip

    def _grants(self):
        activations = CounterMetricFamily(
            "airlock_activations", "Grants activated, by provider", labels=["provider"]
        )
        revocations = CounterMetricFamily(
            "airlock_revocations",
            "Grants ended, by provider and outcome",
            labels=["provider", "outcome"],
        )
        live = GaugeMetricFamily("airlock_grants_live", "Grants live now", labels=["provider"])
        rows = Grant.objects.values_list("request__profile__provider_kind").annotate(
            activated=Count("id", filter=Q(activated_at__isnull=False)),
            revoked=Count("id", filter=Q(status=Grant.Status.REVOKED)),
            revoke_failed=Count("id", filter=Q(status=Grant.Status.REVOKE_FAILED)),
            failed=Count("id", filter=Q(status=Grant.Status.FAILED)),
            live=Count("id", filter=Q(status__in=LIVE)),
        )
        for kind, activated, revoked, revoke_failed, failed, now_live in rows:
            activations.add_metric([kind], activated)
            revocations.add_metric([kind, "revoked"], revoked)
            revocations.add_metric([kind, "revoke_failed"], revoke_failed)
            revocations.add_metric([kind, "activation_failed"], failed)
            live.add_metric([kind], now_live)
        return activations, revocations, live

    def _revocation_lag(self):
        lag = ExpressionWrapper(F("ended_at") - F("expires_at"), output_field=DurationField())
        # Revoked only: a failed revocation's `ended_at` is when trying stopped, not a death.
        expired = Grant.objects.filter(
            status=Grant.Status.REVOKED, end_reason="expired", ended_at__isnull=False
        ).annotate(lag=lag)
        buckets = {
            f"le_{n}": Count("id", filter=Q(lag__lte=timedelta(seconds=bound)))
            for n, bound in enumerate(LAG_BUCKETS)
        }
        found = expired.aggregate(total=Count("id"), seconds=Sum("lag"), **buckets)
        seconds = found["seconds"].total_seconds() if found["seconds"] else 0.0
        return HistogramMetricFamily(
            "airlock_revocation_lag_seconds",
            "From a grant's expiry to its revocation at the source",
            buckets=[
                *[(str(bound), found[f"le_{n}"]) for n, bound in enumerate(LAG_BUCKETS)],
                ("+Inf", found["total"]),
            ],
            sum_value=seconds,
        )

    def _provider_failures(self):
        family = CounterMetricFamily(
            "airlock_provider_errors", "Calls to a source that failed, by step", labels=["step"]
        )
        counts = dict(
            AuditEvent.objects.filter(action__in=list(PROVIDER_FAILURES))
            .values_list("action")
            .annotate(n=Count("seq"))
        )
        for action, step in PROVIDER_FAILURES.items():
            family.add_metric([step], counts.get(action, 0))
        return family

    def _alerts(self):
        family = CounterMetricFamily("airlock_alerts", "Anomaly alerts raised", labels=["kind"])
        for kind, n in Alert.objects.values_list("kind").annotate(n=Count("id")):
            family.add_metric([kind], n)
        return family

    def _task_timings(self):
        families = {
            TaskTiming.Kind.WAIT: HistogramMetricFamily(
                "airlock_celery_task_wait_seconds",
                "From a task's publication (or its ETA) to a worker starting it",
                labels=["task"],
            ),
            TaskTiming.Kind.RUN: HistogramMetricFamily(
                "airlock_celery_task_run_seconds", "How long tasks ran", labels=["task"]
            ),
        }
        rows = TaskTiming.objects.order_by("kind", "task", "le")
        for (kind, task), group in groupby(rows, key=lambda row: (row.kind, row.task)):
            buckets, below, cumulative = list(group), 0, []
            for bucket in buckets:
                below += bucket.count
                cumulative.append(("+Inf" if math.isinf(bucket.le) else str(bucket.le), below))
            if cumulative[-1][0] != "+Inf":
                cumulative.append(("+Inf", below))
            seconds = sum(bucket.seconds for bucket in buckets)
            families[kind].add_metric([task], cumulative, sum_value=seconds)
        yield from families.values()

    def _now(self):
        glass = GaugeMetricFamily("airlock_break_glass_live", "Break-glass grants live now")
        glass.add_metric(
            [], Grant.objects.filter(status__in=LIVE, request__break_glass=True).count()
        )
        yield glass
        locks = GaugeMetricFamily("airlock_locks_holding", "Locks in force", labels=["scope"])
        counts = dict(holding_locks().values_list("scope").annotate(n=Count("id")))
        for scope in ("user", "profile", "target"):
            locks.add_metric([scope], counts.get(scope, 0))
        yield locks
        head = GaugeMetricFamily("airlock_audit_head_seq", "The audit chain's newest event")
        head.add_metric([], getattr(AuditChainHead.objects.first(), "seq", 0))
        yield head
        depths = queue_depths()
        if depths is not None:
            queue = GaugeMetricFamily(
                "airlock_celery_queue_depth", "Tasks waiting in each queue", labels=["queue"]
            )
            for name, depth in depths.items():
                queue.add_metric([name], depth)
            yield queue


def _counted_by(family, rows, field: str, values: list[str]):
    """The family with one sample per value of `field` (0 where no row has it)."""
    counts = dict(rows.values_list(field).annotate(n=Count("pk")))
    for value in values:
        family.add_metric([value], counts.get(value, 0))
    return family


def queue_depths() -> dict[str, int] | None:
    """Tasks waiting in each of Celery's queues, where the broker is Redis (lists)."""
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return None
    import redis

    try:
        with redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2) as client:
            return {
                queue.name: int(client.llen(queue.name)) for queue in settings.CELERY_TASK_QUEUES
            }
    except redis.RedisError:
        return None
