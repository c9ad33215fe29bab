"""Slack, kept true: post new requests where their profile says, update every
message about a request in place after each change, and tell the requester."""

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.actions import Action
from audit.models import AuditEvent
from broker import lifecycle
from broker.models import AccessRequest, Grant
from broker.policy.approvers import current_step, eligible_approvers, profile_approvers
from broker.policy.locks import locked_user_ids, security_principals
from broker.policy.principals import users_matching
from integrations.slack import blocks
from integrations.slack.linking import slack_id_of
from integrations.slack.models import SlackMessage

logger = logging.getLogger(__name__)

# Audit action -> what the requester is told in a direct message.
REQUESTER_NEWS = {
    Action.REQUEST_APPROVED: "approved",
    Action.REQUEST_DENIED: "denied",
    Action.REQUEST_WITHDRAWN: "withdrawn",
    Action.GRANT_ACTIVATED: "active",
    Action.GRANT_REVOKED: "revoked",
    Action.GRANT_EXPIRED: "expired",
    Action.GRANT_FAILED: "failed",
    Action.GRANT_EXTENDED: "extended",
}


def request_of(event: AuditEvent) -> AccessRequest | None:
    requests = AccessRequest.objects.select_related("profile", "requester")
    if event.target_type == "accessrequest":
        return requests.filter(pk=event.target_id).first()
    if event.target_type == "grant":
        return requests.filter(grant__pk=event.target_id).first()
    return None


# A notifier's own report of whom it asked: nothing in Slack changes.
QUIET = {Action.REQUEST_APPROVERS_NOTIFIED}


def handle_event(client, event: AuditEvent) -> None:
    if event.action in QUIET:
        return
    if event.action == Action.ALERT_RAISED:
        evidence = ", ".join(f"#{seq}" for seq in event.data.get("evidence", []))
        kind = event.data.get("kind")
        security(client, f":rotating_light: {kind} ({evidence})", ("What", event.reason))
        return
    if event.action in LOCK_NEWS:
        lock_news(client, event)
        return
    access_request = request_of(event)
    if access_request is None:
        return
    if event.action in LOUD:
        LOUD[event.action](client, access_request, event)
    if event.action == Action.REQUEST_SUBMITTED:
        post_request(client, access_request)
    else:
        refresh_messages(client, access_request)
        if event.action == Action.REQUEST_DECISION_APPROVE and access_request.status == "pending":
            post_request(client, access_request)  # the next step's approvers, if it opened
    if event.action == Action.GRANT_EXTENDED:
        # The extension's own messages show the new end too.
        extension = AccessRequest.objects.filter(pk=event.data.get("request")).first()
        if extension is not None:
            refresh_messages(client, extension)
    news = REQUESTER_NEWS.get(event.action)
    if news:
        tell_requester(client, access_request, news, event)


LOCK_NEWS = {
    Action.LOCK_PLACED: "{by} locked {subject} {until}; what was live there is being revoked",
    Action.LOCK_LIFT_PROPOSED: (
        "{by} proposes lifting the lock on {subject}: a second person of the security role "
        "must confirm on {page}"
    ),
    Action.LOCK_LIFTED: "{by} lifted the lock on {subject} (proposed by {proposed_by})",
    Action.LOCK_ENDED: "The lock on {subject} ended: its time passed",
}


def lock_news(client, event: AuditEvent) -> None:
    """Locks go to the security channel; a proposal to lift one also to each other
    member of the security role, who may confirm it."""
    data = event.data
    ends_at = data.get("ends_at", "")
    text = LOCK_NEWS[event.action].format(
        by=blocks.escape(event.actor or "Automatic containment"),
        subject=blocks.escape(f"{data.get('scope')} {data.get('subject')}"),
        until=f"until {ends_at[:16].replace('T', ' ')} UTC" if ends_at else "until lifted",
        proposed_by=blocks.escape(data.get("proposed_by", "")),
        page=blocks.web_url("locks"),
    )
    evidence = ", ".join(f"#{seq}" for seq in data.get("evidence", []))
    said = [("Reason", event.reason)] + ([("Evidence", evidence)] if evidence else [])
    security(client, f":lock: {text}.", *said)
    if event.action == Action.LOCK_LIFT_PROPOSED:
        others = (
            users_matching(security_principals())
            .exclude(username=event.actor)
            .exclude(pk__in=locked_user_ids())  # a locked member confirms nothing
        )
        _dm_each(client, others, f"{text}.", blocks.with_said(f"{text}.", *said)["blocks"])


def security(client, text: str, *said: tuple[str, str]) -> None:
    if settings.SLACK_SECURITY_CHANNEL:
        client.chat_postMessage(
            channel=settings.SLACK_SECURITY_CHANNEL, **blocks.with_said(text, *said)
        )


def _dm_each(client, users, text: str, message: list | None = None) -> None:
    for user in users:
        if slack_user := slack_id_of(user):
            client.chat_postMessage(channel=slack_user, text=text, blocks=message)


def _break_glass(client, access_request: AccessRequest, event: AuditEvent) -> None:
    text = (
        f":rotating_light: BREAK-GLASS: {blocks.escape(event.actor)} took "
        f"*{access_request.profile.slug}* for {access_request.duration} without approval. "
        f"A review is due by {event.data.get('review_due')}."
    )
    said = ("Reason", event.reason)
    security(client, text, said)
    _dm_each(client, profile_approvers(access_request.profile), text,
             blocks.with_said(text, said)["blocks"])  # fmt: skip


def _reminder(client, access_request: AccessRequest, event: AuditEvent) -> None:
    text, message = blocks.request_message(access_request)
    _dm_each(client, eligible_approvers(access_request), f"Reminder: {text}", message)


def _escalated(client, access_request: AccessRequest, event: AuditEvent) -> None:
    text, message = blocks.request_message(access_request)
    escalate_to = access_request.profile.definition.policy.reminders.escalate_to
    _dm_each(client, users_matching(escalate_to), f"Escalated to you: {text}", message)


def _review_overdue(client, access_request: AccessRequest, event: AuditEvent) -> None:
    security(
        client,
        f"Break-glass review of {access_request.requester.get_username()}'s "
        f"{access_request.profile.slug} access is overdue: "
        f"{blocks.web_url('request-detail', request_id=access_request.pk)}",
    )


LOUD = {
    Action.REQUEST_BREAK_GLASS: _break_glass,
    Action.REQUEST_REMINDER: _reminder,
    Action.REQUEST_ESCALATED: _escalated,
    Action.REVIEW_OVERDUE: _review_overdue,
}


def post_request(client, access_request: AccessRequest) -> None:
    """Ask the approvers (channel and/or DMs, per catalog) and confirm to the requester.
    Safe to repeat: a message already posted is not posted again."""
    definition = access_request.profile.definition
    targets: list[tuple[str, str]] = []
    asked: dict[str, str] = {}  # target -> who that is, for the request's record
    if definition.slack_channel:
        targets.append((SlackMessage.Kind.CHANNEL, definition.slack_channel))
        asked[definition.slack_channel] = f"#{definition.slack_channel.lstrip('#')}"
    if definition.slack_dm_approvers:
        # The approvers of the step it waits for (each step's in turn, as it opens).
        step = current_step(access_request)
        for approver in eligible_approvers(access_request, step=step or 0):
            if slack_user := slack_id_of(approver):
                targets.append((SlackMessage.Kind.APPROVER_DM, slack_user))
                asked[slack_user] = approver.get_username()
    if requester := slack_id_of(access_request.requester):
        targets.append((SlackMessage.Kind.REQUESTER_DM, requester))
    rendered = blocks.status_line(access_request)
    done = set(SlackMessage.objects.filter(request=access_request).values_list("kind", "target"))
    told: list[str] = []
    for kind, target in targets:
        if (kind, target) in done:
            continue
        text, message = _message_for(kind, access_request)
        posted = client.chat_postMessage(channel=target, text=text, blocks=message)
        # Updates need the channel's id, which Slack answers with (a DM's, for a user).
        SlackMessage.objects.create(
            request=access_request,
            kind=kind,
            target=target,
            channel=posted["channel"],
            ts=posted["ts"],
        )
        if target in asked:
            told.append(asked[target])
    if told:
        lifecycle.approvers_notified(request_id=access_request.pk, via="slack", recipients=told)
    access_request.refresh_from_db()
    if blocks.status_line(access_request) != rendered:
        refresh_messages(client, access_request)  # it moved on while we were posting


def refresh_messages(client, access_request: AccessRequest) -> None:
    """Render the request as it is now into each of its messages.

    Notifications for one request run in parallel workers; holding the lock on
    its message rows while reading and sending means the last update to reach
    Slack was rendered from the newest state. (The rows are Slack's own: the
    lifecycle never waits on this lock.)"""
    with transaction.atomic():
        stored_messages = list(
            SlackMessage.objects.select_for_update().filter(request=access_request)
        )
        if not stored_messages:
            return
        access_request = AccessRequest.objects.select_related("profile", "requester").get(
            pk=access_request.pk
        )
        for stored in stored_messages:
            _update(client, stored, access_request)


def _update(client, stored: SlackMessage, access_request: AccessRequest) -> None:
    text, message = _message_for(stored.kind, access_request)
    client.chat_update(channel=stored.channel, ts=stored.ts, text=text, blocks=message)


def _message_for(kind: str, access_request: AccessRequest) -> tuple[str, list]:
    if kind == SlackMessage.Kind.REQUESTER_DM:
        return blocks.request_message(access_request, buttons=False)  # no buttons for the asker
    return blocks.request_message(access_request)


def tell_requester(client, access_request: AccessRequest, news: str, event: AuditEvent) -> None:
    slack_user = slack_id_of(access_request.requester)
    if slack_user is None:
        return
    slug = access_request.profile.slug
    said: list[tuple[str, str]] = []
    if news == "approved":
        text = f"Your request for *{slug}* was approved; the credential is being minted."
    elif news == "denied":
        text = f"Your request for *{slug}* was denied by {blocks.escape(event.actor)}."
        said = [("Why", event.reason)] if event.reason else []
    elif news == "withdrawn":
        text = f"Your request for *{slug}* was withdrawn by Airlock."
        said = [("Why", event.reason)]
    elif news == "active":
        grant = Grant.objects.get(request=access_request)
        text = (
            f"Your access to *{slug}* is active until {_utc(grant.expires_at)}. "
            f"<{blocks.web_url('grant-detail', grant_id=grant.pk)}|Show the credential> "
            "on Airlock (once, after MFA)."
        )
    elif news == "extended":
        grant = Grant.objects.get(request=access_request)
        text = (
            f"Your access to *{slug}* was extended until {_utc(grant.expires_at)}. The "
            f"credential was re-issued: <{blocks.web_url('grant-detail', grant_id=grant.pk)}|"
            "show the new one> on Airlock."
        )
    elif news == "failed":
        text = f"Your access to *{slug}* could not be set up; an operator has been alerted."
    elif news == "expired":
        text = f"Your access to *{slug}* expired."
    else:
        who, reason = blocks.revocation(Grant.objects.get(request=access_request))
        text = f"Your access to *{slug}*: {who}."
        said = [("Why", reason)] if reason else []
    client.chat_postMessage(channel=slack_user, **blocks.with_said(text, *said))


def warn_before_expiry(client, grant: Grant) -> None:
    slack_user = slack_id_of(grant.request.requester)
    if slack_user is None or grant.status != Grant.Status.ACTIVE:
        return
    minutes = max(1, int((grant.expires_at - timezone.now()).total_seconds() // 60))
    text = (
        f"Your access to *{grant.request.profile.slug}* ends in {minutes} minutes "
        f"({_utc(grant.expires_at)})."
    )
    client.chat_postMessage(
        channel=slack_user, text=text, blocks=blocks.expiry_warning(grant, text)
    )


def warning_time(grant: Grant) -> datetime | None:
    if grant.expires_at is None:
        return None
    moment = grant.expires_at - settings.AIRLOCK_EXPIRY_WARNING
    return moment if moment > timezone.now() else None


def _utc(moment) -> str:
    return f"{moment:%H:%M} UTC"
