"""The floors beside Airlock's API submission and Slack click: bare Django views
on the same gunicorn that do what any submission or click must, and nothing
else. Airlock's CPU per operation reads as a ratio to theirs, measured in the
same run.

- A submission: find the token, parse the JSON, insert the request, append its
  audit event, answer JSON. No DRF, eligibility, lock, policy, risk, rate limit
  or notification.
- A click on Approve: check Slack's signature and that it is not a replay, parse
  the payload, find the clicker's linked account and the request, open a modal
  through Slack's Web API, answer 200. No Bolt, no approver or MFA checks, no
  history in the modal."""

import json
from datetime import timedelta
from urllib.parse import parse_qs

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from slack_sdk.signature import SignatureVerifier

from accounts.tokens import TokenError, token_authenticate
from audit import trail
from audit.actions import Action
from audit.models import Source
from broker.models import AccessProfile, AccessRequest
from integrations.slack.client import slack_client
from integrations.slack.models import SlackIdentity


@csrf_exempt
@require_POST
def submit(request: HttpRequest) -> JsonResponse:
    try:
        token = token_authenticate(request.headers.get("Authorization", "")[len("Bearer ") :])
    except TokenError as exc:
        return JsonResponse({"detail": str(exc)}, status=401)
    asked = json.loads(request.body)
    profile = AccessProfile.objects.get(slug=asked["profile"])
    now = timezone.now()
    with transaction.atomic():
        access_request = AccessRequest.objects.create(
            profile=profile,
            requester=token.user,
            duration=timedelta(minutes=30),
            source=Source.API,
            created_at=now,
            pending_until=now + timedelta(hours=1),
        )
        trail.record(
            action=Action.REQUEST_SUBMITTED,
            info=trail.RequestInfo(source=Source.API, ip=request.META.get("REMOTE_ADDR")),
            actor=token.user,
            target=access_request,
            to_status=access_request.status,
            data={"profile": profile.slug, "duration": "30m"},
        )
    return JsonResponse({"id": str(access_request.pk), "status": access_request.status}, status=201)


@csrf_exempt
@require_POST
def slack_click(request: HttpRequest) -> HttpResponse:
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    if not SignatureVerifier(settings.SLACK_SIGNING_SECRET).is_valid(
        request.body, timestamp, signature
    ):
        return HttpResponse(status=401)
    if not cache.add(f"floor:seen:{signature}", 1, 600):
        return HttpResponse(status=401)
    payload = json.loads(parse_qs(request.body.decode())["payload"][0])
    identity = SlackIdentity.objects.select_related("user").get(
        team_id=payload["team"]["id"], slack_user_id=payload["user"]["id"]
    )
    access_request = AccessRequest.objects.select_related("profile").get(
        pk=payload["actions"][0]["value"]
    )
    slack_client().views_open(
        trigger_id=payload["trigger_id"],
        view={
            "type": "modal",
            "title": {"type": "plain_text", "text": "Approve"},
            "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                       "text": f"{identity.user.get_username()}: {access_request.profile.slug}"}}],
        },
    )  # fmt: skip
    return HttpResponse(status=200)
