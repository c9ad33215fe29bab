from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from broker.policy import requestable_profiles
from broker.selectors import live_grants_of, requests_of


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    context = {
        "grants": live_grants_of(request.user),
        "requests": requests_of(request.user),
        "profiles": requestable_profiles(request.user),
    }
    return render(request, "home.html", context)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
