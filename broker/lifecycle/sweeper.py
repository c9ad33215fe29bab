"""The third line of defence, run by Celery beat every few seconds."""

from contextlib import suppress

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from broker.lifecycle.common import GrantStatus
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

    overdue = Grant.objects.filter(status=GrantStatus.ACTIVE, expires_at__lte=now)
    counts["grants_expired"] = 0
    for pk in _ids(overdue):
        # A transient failure is recorded; the next sweep tries again.
        with suppress(TryAgainLater):
            counts["grants_expired"] += grant_expire(grant_id=pk) is not None
    stalled_revocations = Grant.objects.filter(
        status__in=[GrantStatus.REVOKING, GrantStatus.REVOKE_FAILED]
    ).exclude(last_attempt_at__gt=now - settings.AIRLOCK_REVOKE_RETRY_AFTER)
    counts["revocations_retried"] = 0
    for pk in _ids(stalled_revocations):
        # A transient failure is recorded; the next sweep tries again.
        with suppress(TryAgainLater):
            counts["revocations_retried"] += grant_revoke_execute(grant_id=pk) is not None
    stalled_activations = (
        Grant.objects.filter(status=GrantStatus.SCHEDULED, created_at__lte=now - SCHEDULED_GRACE)
        .filter(Q(request__start_at__isnull=True) | Q(request__start_at__lte=now))
        .exclude(last_attempt_at__gt=now - SCHEDULED_GRACE)
    )
    counts["activations_retried"] = 0
    for pk in _ids(stalled_activations):
        with suppress(TryAgainLater):
            counts["activations_retried"] += grant_activate(grant_id=pk) is not None
    # Approved extensions whose task was lost (applying one twice is a no-op).
    counts["extensions_retried"] = 0
    for pk in _unapplied_extensions(now):
        with suppress(TryAgainLater):
            counts["extensions_retried"] += grant_extend_execute(request_id=pk) is not None
    return counts


def _ids(queryset, limit: int = 500) -> list:
    return list(queryset.order_by("created_at").values_list("pk", flat=True)[:limit])
