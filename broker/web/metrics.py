"""`/metrics` for Prometheus, behind a bearer token (AIRLOCK_METRICS_TOKEN or
_FILE): without one configured it answers 404, as if it did not exist."""

import hmac

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from broker.metrics import AirlockCollector
from lib.secrets import read_secret


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    expected = read_secret("AIRLOCK_METRICS_TOKEN", required=False)
    if not expected:
        return HttpResponse("not found\n", status=404, content_type="text/plain")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
        response = HttpResponse(
            "a valid bearer token is required\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = "Bearer"
        return response
    registry = CollectorRegistry()
    registry.register(AirlockCollector())
    response = HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
