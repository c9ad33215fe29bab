"""Email asks approvers when a request waits for them (submitted, reminded,
escalated, or on to its next step), and reviewers when an access review needs
them (started, reminded, escalated), once the change has committed. The core
knows nothing of email."""

import logging

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver

from audit.actions import Action
from audit.models import AuditEvent
from audit.trail import event_recorded
from integrations.mail import tasks

logger = logging.getLogger(__name__)
ASKING = (
    Action.REQUEST_SUBMITTED,
    Action.REQUEST_REMINDER,
    Action.REQUEST_ESCALATED,
    Action.REQUEST_DECISION_APPROVE,  # a multi-step request moves on to its next approvers
)


REVIEWING = (
    Action.ACCESS_REVIEW_STARTED,
    Action.ACCESS_REVIEW_REMINDED,
    Action.ACCESS_REVIEW_ESCALATED,
)


@receiver(event_recorded)
def audit_event_written(sender, event: AuditEvent, **kwargs) -> None:
    if not settings.AIRLOCK_EMAIL_ENABLED:
        return
    if event.action in ASKING:
        transaction.on_commit(lambda: enqueue(tasks.email_approvers, event.pk))
    elif event.action in REVIEWING:
        transaction.on_commit(lambda: enqueue(tasks.email_reviewers, event.pk))
    elif event.action == Action.EXTERNAL_CONTRACT_ENDING:
        transaction.on_commit(lambda: enqueue(tasks.email_sponsor, event.pk))


def enqueue(task, event_id: int) -> None:
    try:
        task.apply_async(args=[event_id])
    except Exception:
        logger.exception("could not enqueue the email for audit event %s", event_id)
