"""Outgoing email, in Celery: a slow or failing mail server never holds up a request."""

import logging
import smtplib

from celery import shared_task

from integrations.mail import notifier

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=5, name="integrations.mail.tasks.email_approvers")
def email_approvers(self, event_id: int) -> None:
    try:
        notifier.email_approvers(event_id)
    except (smtplib.SMTPException, OSError) as exc:
        logger.warning("email to approvers failed (audit event %s): %s", event_id, exc)
        raise self.retry(countdown=60 * 2**self.request.retries) from exc


@shared_task(bind=True, max_retries=5, name="integrations.mail.tasks.email_reviewers")
def email_reviewers(self, event_id: int) -> None:
    try:
        notifier.email_reviewers(event_id)
    except (smtplib.SMTPException, OSError) as exc:
        logger.warning("email to reviewers failed (audit event %s): %s", event_id, exc)
        raise self.retry(countdown=60 * 2**self.request.retries) from exc


@shared_task(bind=True, max_retries=5, name="integrations.mail.tasks.email_sponsor")
def email_sponsor(self, event_id: int) -> None:
    try:
        notifier.email_sponsor(event_id)
    except (smtplib.SMTPException, OSError) as exc:
        logger.warning("email to a sponsor failed (audit event %s): %s", event_id, exc)
        raise self.retry(countdown=60 * 2**self.request.retries) from exc
