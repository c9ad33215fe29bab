"""Celery tasks: thin wrappers that take ids and call the lifecycle."""

import random
from collections.abc import Callable

from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from broker import anomalies, lifecycle, rollup, task_names
from broker.reconcile import reconcile_orphans
from broker.riskmodel import store as riskmodel


def _run_or_retry(task: Task, step: Callable, **ids: str) -> None:
    # The lifecycle records every attempt and gives up by itself (failed /
    # revoke_failed) when retrying cannot help, so the task only backs off.
    # A lost database connection (a restart, a failover) rolled everything
    # back: trying again later is safe, and sooner than the sweeper.
    try:
        step(**ids)
    except (lifecycle.TryAgainLater, OperationalError, InterfaceError) as exc:
        if getattr(exc, "retry_in", None) is not None:
            raise task.retry(countdown=exc.retry_in) from exc
        # Exponential with full jitter, so retries of many grants do not stampede.
        countdown = random.uniform(1, min(300, 2 ** (task.request.retries + 1)))  # noqa: S311  # nosec B311  # jitter
        raise task.retry(countdown=countdown) from exc


@shared_task(bind=True, max_retries=None, name=task_names.ACTIVATE_GRANT)
def activate_grant(self, grant_id: str) -> None:
    _run_or_retry(self, lifecycle.grant_activate, grant_id=grant_id)


@shared_task(bind=True, max_retries=None, name=task_names.EXPIRE_GRANT)
def expire_grant(self, grant_id: str) -> None:
    _run_or_retry(self, lifecycle.grant_expire, grant_id=grant_id)


@shared_task(bind=True, max_retries=None, name=task_names.REVOKE_GRANT)
def revoke_grant(self, grant_id: str) -> None:
    _run_or_retry(self, lifecycle.grant_revoke_execute, grant_id=grant_id)


@shared_task(bind=True, max_retries=None, name=task_names.EXTEND_GRANT)
def extend_grant(self, request_id: str) -> None:
    _run_or_retry(self, lifecycle.grant_extend_execute, request_id=request_id)


@shared_task(name=task_names.SWEEP)
def sweep() -> dict[str, int]:
    return lifecycle.sweep()


@shared_task(name=task_names.EXPIRE_GRANTS)
def expire_grants(grant_ids: list[str]) -> int:
    """A batch of overdue grants a sweep handed out; what fails now, or is not
    reached by the next sweep, that sweep hands out again."""
    return lifecycle.grants_expire(grant_ids=grant_ids, within=settings.AIRLOCK_SWEEP_SECONDS)


@shared_task(name=task_names.WATCH)
def watch() -> dict[str, int]:
    """Reminders, escalations, overdue reviews, anomaly alerts and the locks the
    catalog's containment rules place for them (Celery beat)."""
    counts = lifecycle.remind_pending()
    counts["reviews_reminded"] = lifecycle.remind_reviews()
    # The safety net for standing changed behind Airlock's back (raw SQL, a
    # restore); pending requests need none, approval checks standing itself.
    ended = lifecycle.access_enforce_standing(grants_only=True)
    counts["grants_ended_for_standing"] = sum(change.action != "kept" for change in ended)
    counts["alerts"] = len(anomalies.detect())
    counts["locks_by_containment"] = len(lifecycle.alerts_contain())
    return counts


@shared_task(name=task_names.RECONCILE)
def reconcile() -> int:
    return len(reconcile_orphans().orphans)


@shared_task(name=task_names.ROLL_UP_INSIGHTS)
def roll_up_insights() -> int:
    return rollup.roll_up(timezone.now())


@shared_task(name=task_names.TICK_ACCESS_REVIEWS)
def tick_access_reviews() -> dict[str, int]:
    return lifecycle.access_reviews_tick()


@shared_task(name=task_names.TICK_EXTERNALS)
def tick_externals() -> dict[str, int]:
    return lifecycle.externals_tick()


@shared_task(name=task_names.TRAIN_RISK_MODEL)
def train_risk_model() -> int | None:
    model = riskmodel.retrain(timezone.now())
    return model.pk if model else None
