"""The floor beside Airlock's API submission: a bare Django view on the same
gunicorn that does what any submission must (find the token, parse the JSON,
insert the request, append its audit event, answer JSON), and nothing else:
no DRF, no eligibility, lock, policy or risk, no rate limit, no notification.
Airlock's CPU per submission reads as a ratio to this one's, measured in the
same run."""

import json
from datetime import timedelta

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.tokens import TokenError, token_authenticate
from audit import trail
from audit.actions import Action
from audit.models import Source
from broker.models import AccessProfile, AccessRequest


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
