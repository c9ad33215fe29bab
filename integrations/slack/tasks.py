"""Outgoing Slack calls, in Celery: rate limits and Slack's own outages are
retried here, never in the way of an approval."""

import logging
import random
from urllib.error import URLError

from celery import shared_task
from slack_sdk.errors import SlackApiError

from audit.actions import Action
from audit.models import AuditEvent
from broker.models import Grant
from integrations.slack import notifier
from integrations.slack.client import slack_client

logger = logging.getLogger(__name__)
MAX_RETRIES = 8


def _retry_or_give_up(task, exc: Exception) -> None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    transient = (
        isinstance(exc, URLError | TimeoutError | ConnectionError)
        or status == 429
        or (status is not None and status >= 500)
    )
    if not transient:
        # A wrong channel or a removed user: retrying cannot help.
        logger.warning("Slack refused the notification: %s", exc)
        return
    retry_after = response.headers.get("Retry-After") if response is not None else None
    countdown = (
        float(retry_after)
        if retry_after
        else random.uniform(  # noqa: S311  # nosec B311  # retry jitter
            1, min(300, 2 ** (task.request.retries + 1))
        )
    )
    raise task.retry(countdown=countdown, exc=exc, max_retries=MAX_RETRIES)


@shared_task(bind=True)
def notify(self, event_id: int) -> None:
    event = AuditEvent.objects.filter(pk=event_id).first()
    if event is None:
        return
    client = slack_client()
    try:
        notifier.handle_event(client, event)
        if event.action == Action.GRANT_ACTIVATED:
            grant = Grant.objects.get(pk=event.target_id)
            if (moment := notifier.warning_time(grant)) is not None:
                warn_before_expiry.apply_async(args=[str(grant.pk)], eta=moment)
    except (SlackApiError, URLError, TimeoutError, ConnectionError) as exc:
        _retry_or_give_up(self, exc)


@shared_task(bind=True)
def warn_before_expiry(self, grant_id: str) -> None:
    grant = Grant.objects.select_related("request__profile", "request__requester").filter(
        pk=grant_id
    )
    if not grant.exists():
        return
    try:
        notifier.warn_before_expiry(slack_client(), grant.get())
    except (SlackApiError, URLError, TimeoutError, ConnectionError) as exc:
        _retry_or_give_up(self, exc)
