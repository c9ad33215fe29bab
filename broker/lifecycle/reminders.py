"""Nudges: undecided requests reminded and escalated, overdue reviews reminded."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit import trail
from audit.actions import Action
from broker.lifecycle.common import Status
from broker.models import AccessRequest, BreakGlassReview
from lib.durations import format_duration


def remind_pending(now=None) -> dict[str, int]:
    """Remind approvers of undecided requests with backoff (after `first_after`, then
    each time after twice as long), and escalate once to the fallback group."""
    now = now or timezone.now()
    counts = {"reminded": 0, "escalated": 0}
    pending = AccessRequest.objects.filter(status=Status.PENDING, pending_until__gt=now)
    for access_request in pending.select_related("profile").order_by("created_at")[:500]:
        reminders = access_request.profile.definition.policy.reminders
        if reminders is None:
            continue
        waited = now - access_request.created_at
        sent = access_request.reminders_sent
        if waited >= reminders.first_after * (2**sent) and _claim_reminder(access_request, sent):
            with transaction.atomic():
                trail.record(
                    action=Action.REQUEST_REMINDER,
                    info=trail.SYSTEM,
                    target=access_request,
                    data={"reminder": sent + 1, "waited": format_duration(waited)},
                )
            counts["reminded"] += 1
        late = reminders.escalate_after is not None and waited >= reminders.escalate_after
        if late and access_request.escalated_at is None:
            with transaction.atomic():
                if AccessRequest.objects.filter(pk=access_request.pk, escalated_at=None).update(
                    escalated_at=now
                ):
                    trail.record(
                        action=Action.REQUEST_ESCALATED,
                        info=trail.SYSTEM,
                        target=access_request,
                        data=reminders.escalate_to.model_dump(),
                    )
                    counts["escalated"] += 1
    return counts


def _claim_reminder(access_request: AccessRequest, sent: int) -> bool:
    # Conditional on the count seen, so two watchers never send the same reminder.
    return bool(
        AccessRequest.objects.filter(pk=access_request.pk, reminders_sent=sent).update(
            reminders_sent=sent + 1
        )
    )


REVIEW_REMINDER_EVERY = timedelta(hours=24)


def remind_reviews(now=None) -> int:
    """Overdue break-glass reviews: say so (again, once a day) until one is closed."""
    now = now or timezone.now()
    overdue = BreakGlassReview.objects.filter(closed_at=None, due_at__lte=now).filter(
        Q(last_reminded_at=None) | Q(last_reminded_at__lte=now - REVIEW_REMINDER_EVERY)
    )
    reminded = 0
    for review in overdue.select_related("request__profile")[:200]:
        with transaction.atomic():
            if BreakGlassReview.objects.filter(
                pk=review.pk, last_reminded_at=review.last_reminded_at
            ).update(last_reminded_at=now):
                trail.record(
                    action=Action.REVIEW_OVERDUE,
                    info=trail.SYSTEM,
                    target=review.request,
                    data={"due_at": review.due_at.isoformat()},
                )
                reminded += 1
    return reminded
