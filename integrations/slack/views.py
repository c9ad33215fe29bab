"""`/slack/events`: slash commands, interactivity and events on one URL."""

import json
from functools import cache

from django.conf import settings
from django.core.cache import cache as django_cache
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from slack_bolt.adapter.django.handler import to_bolt_request, to_django_response
from slack_sdk.signature import SignatureVerifier

from audit.models import Source
from audit.trail import AUDIT_SOURCE_ATTRIBUTE
from integrations.slack.workspaces import workspace_problem

# Slack signs each request with its timestamp; older than this is refused.
MAX_AGE_SECONDS = 300
MAX_BODY_BYTES = 1 << 20


@cache
def bolt_app():
    from integrations.slack.listeners import build_app

    return build_app()


def _refuse(status: int, message: str) -> JsonResponse:
    return JsonResponse({"ok": False, "error": message}, status=status)


@csrf_exempt  # Slack cannot send Django's CSRF token; its signature is checked instead
@require_POST
def slack_events(request: HttpRequest) -> HttpResponse:
    if not settings.SLACK_ENABLED:
        return _refuse(404, "Slack is not configured on this Airlock")
    if len(request.body) > MAX_BODY_BYTES:
        return _refuse(413, "request too large")
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    verifier = SignatureVerifier(settings.SLACK_SIGNING_SECRET)
    # ASCII digits only: str.isdigit() takes "²" too, on which the verifier's int() fails.
    readable = timestamp.isascii() and timestamp.isdigit()
    if not (readable and verifier.is_valid(request.body, timestamp, signature)):
        return _refuse(401, "invalid or stale signature")
    # A signed request is good for five minutes; within them, only once.
    if not django_cache.add(f"slack:seen:{signature}", 1, MAX_AGE_SECONDS * 2):
        return _refuse(401, "replayed request")
    problem = payload_problem(request)
    if problem:
        return _refuse(400, f"malformed payload: {problem}")
    # Changes made while serving it (a Slack identity linked) are audited as Slack's.
    setattr(request, AUDIT_SOURCE_ATTRIBUTE, Source.SLACK)
    bolt_request = to_bolt_request(request)
    foreign = workspace_problem(bolt_request.body)
    if foreign:
        return _refuse(403, foreign)
    return to_django_response(bolt_app().dispatch(bolt_request))


def _is_object(value, *keys: str) -> bool:
    return isinstance(value, dict) and all(isinstance(value.get(key), str) for key in keys)


KNOWN_ACTIONS = {
    "approve",
    "deny",
    "relinquish",
    "extend",
    "open_web",
    "label_unusual",
    "label_normal",
}
KNOWN_VIEWS = {"request_modal", "approve_modal", "deny_modal", "extend_modal", "lock_modal"}


def payload_problem(request: HttpRequest) -> str | None:
    """What is wrong with a (correctly signed) body, before Bolt reads it. Bolt
    trusts Slack's shapes, so only the shapes Airlock handles get through."""
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body)
        except ValueError:
            return "not JSON"
        if not _is_object(body, "type"):
            return "no type"
        if body["type"] == "url_verification":
            return None
        if body["type"] != "event_callback" or not _is_object(body.get("event"), "type", "user"):
            return "not an event Airlock subscribes to"
        return None
    if request.content_type != "application/x-www-form-urlencoded":
        return f"unexpected content type {request.content_type!r}"
    form = QueryDict(request.body.decode("utf-8", errors="replace"))
    if "payload" not in form:
        if _is_object(form.dict(), "command", "user_id", "team_id") and form["command"].startswith(
            "/access"
        ):
            return None
        return "not a command Airlock offers"
    try:
        payload = json.loads(form["payload"])
    except ValueError:
        return "payload is not JSON"
    if not _is_object(payload, "type") or not _is_object(payload.get("user"), "id"):
        return "no type or user"
    for key in ("team", "channel", "view", "container"):
        if key in payload and not isinstance(payload[key], dict):
            return f"{key} is not an object"
    if not isinstance(payload.get("trigger_id", ""), str):
        return "trigger_id is not text"
    if payload["type"] == "block_actions":
        actions = payload.get("actions")
        if not (isinstance(actions, list) and actions and _is_object(actions[0], "action_id")):
            return "no action"
        if actions[0]["action_id"] not in KNOWN_ACTIONS:
            return "an action Airlock does not offer"
        if not isinstance(actions[0].get("value", ""), str):
            return "the action's value is not text"
        return None
    if payload["type"] == "view_submission":
        view = payload.get("view")
        if not _is_object(view, "type", "callback_id") or view["callback_id"] not in KNOWN_VIEWS:
            return "a view Airlock does not offer"
        if not isinstance((view.get("state") or {}).get("values"), dict) or not isinstance(
            view.get("private_metadata", ""), str
        ):
            return "no view state"
        return None
    return "an interaction Airlock does not offer"
