"""Every change to a request or grant is an audit event; each one, once committed,
asks the Slack notifier to bring Slack up to date. The core knows nothing of Slack."""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from audit.models import AuditEvent
from audit.trail import event_recorded
from integrations.slack import notifier, tasks
from integrations.slack.linking import slack_links_end

logger = logging.getLogger(__name__)
WATCHED = ("request.", "grant.", "review.", "alert.", "lock.")


@receiver(event_recorded)
def audit_event_written(sender, event: AuditEvent, **kwargs) -> None:
    if not (settings.SLACK_ENABLED and event.action.startswith(WATCHED)):
        return
    if event.action in notifier.QUIET:
        return

    transaction.on_commit(lambda: enqueue_notification(event.pk))


def enqueue_notification(event_id: int) -> None:
    try:
        tasks.notify.apply_async(args=[event_id])
    except Exception:
        # Slack is a convenience: its messages catch up at the next change.
        logger.exception("could not enqueue the Slack notification for audit event %s", event_id)


@receiver(post_save, sender=get_user_model())
def account_disabled(sender, instance, created, **kwargs) -> None:
    if not instance.is_active and not created:
        slack_links_end(user=instance)
