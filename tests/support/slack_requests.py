"""Signed requests to /slack/events, as Slack sends them."""

import json
import time
from urllib.parse import urlencode
from uuid import uuid4

from slack_sdk.signature import SignatureVerifier

from audit.models import AuditEvent
from integrations.slack import tasks
from integrations.slack.signals import WATCHED

SECRET = "test-signing-secret"


def signed_post(client, body: str, content_type: str, *, timestamp=None, secret=SECRET):
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return client.generic(
        "POST",
        "/slack/events",
        body,
        content_type,
        HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp,
        HTTP_X_SLACK_SIGNATURE=signature,
    )


def command(client, user: str, text: str = "", *, timestamp=None, **extra):
    fields = {
        "command": "/access", "text": text, "user_id": user, "team_id": "T1",
        "trigger_id": "trigger-1", "channel_id": "C_GENERAL", "response_url": "",
        **extra,
    }  # fmt: skip
    return signed_post(
        client, urlencode(fields), "application/x-www-form-urlencoded", timestamp=timestamp
    )


def interaction(client, payload: dict):
    return signed_post(
        client, urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
    )


def click(
    client,
    user: str,
    action: str,
    value: str,
    channel: str | None = "C_APPROVALS",
    *,
    team: str = "T1",
    user_team: str | None = None,
):
    """A button clicked in workspace `team` by a user of workspace `user_team` (another
    one when a Slack Connect user clicks in a shared channel)."""
    payload = {
        "type": "block_actions",
        "team": {"id": team},
        "user": {"id": user, "team_id": user_team or team},
        # Slack gives every click a trigger of its own: two clicks in one second
        # are two requests, not a replay.
        "trigger_id": f"trigger-{uuid4().hex}",
        "actions": [{"action_id": action, "value": value, "type": "button"}],
    }
    if channel:
        payload["channel"] = {"id": channel}
        payload["container"] = {"type": "message", "channel_id": channel}
    return interaction(client, payload)


def open_home(client, user: str, team: str = "T1"):
    event = {"type": "app_home_opened", "user": user, "tab": "home"}
    body = json.dumps({"type": "event_callback", "team_id": team, "event": event})
    return signed_post(client, body, "application/json")


def submit_view(client, user: str, callback_id: str, values: dict, metadata: str = ""):
    state = {
        block: {"value": {"type": "static_select", "selected_option": {"value": value}}}
        if block == "profile"
        else {"value": {"type": "plain_text_input", "value": value}}
        for block, value in values.items()
    }
    payload = {
        "type": "view_submission",
        "team": {"id": "T1"},
        "user": {"id": user},
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": metadata,
            "state": {"values": state},
        },
    }
    return interaction(client, payload)


def deliver_notifications(after_seq: int = 0) -> int:
    """Run the notifier for every event it watches after `after_seq`, as the
    worker would after each commit; the last sequence number seen."""
    last = after_seq
    for event in AuditEvent.objects.filter(seq__gt=after_seq).order_by("seq"):
        if event.action.startswith(WATCHED):
            tasks.notify.apply(args=[event.pk])
        last = event.seq
    return last
