from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import redirect_to_step_up, saved_form, step_up_required
from accounts.services import has_mfa
from audit.trail import request_info
from broker import lifecycle
from broker.health import provider_health
from broker.models import AccessRequest, Approval, Grant
from broker.policy.approvers import decision_refusal, label_refusal
from broker.policy.extensions import extension_limit
from broker.policy.requesters import requestable_profiles, unavailable_because
from broker.selectors.queue import approval_queue
from broker.selectors.requests import (
    how_approvers_were_asked,
    live_grants_of,
    request_steps,
    request_timeline,
    requests_of,
    risk_factors_seen_by,
    visible_grant,
    visible_request,
    window_used,
)
from broker.web.forms import RequestForm
from broker.web.responses import add_lifecycle_errors, lifecycle_error_response
from lib.durations import parse_duration
from lib.providers import get_provider

DASHBOARD_WAITING = 5


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    context = {
        "grants": live_grants_of(request.user),
        "requests": requests_of(request.user),
        "profiles": requestable_profiles(request.user),
        "mfa_enrolled": has_mfa(request.user),
        "slack_enabled": settings.SLACK_ENABLED,
    }
    # An approver's oldest waiting requests, decided from here.
    waiting = approval_queue(request.user)
    context["waiting"] = list(waiting[:DASHBOARD_WAITING])
    context["waiting_total"] = (
        waiting.count() if len(context["waiting"]) == DASHBOARD_WAITING else len(context["waiting"])
    )
    return render(request, "home.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest) -> HttpResponse:
    profiles = requestable_profiles(request.user)
    initial = {"profile": request.GET.get("profile"), **saved_form(request)}
    form = RequestForm(request.POST or None, profiles=profiles, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            access_request = lifecycle.access_request_submit(
                requester=request.user,
                profile=form.selected_profile,
                duration=form.cleaned_data["duration"],
                reason=form.cleaned_data["reason"],
                ticket=form.cleaned_data["ticket"],
                ssh_public_key=form.cleaned_data["ssh_public_key"],
                start_at=form.cleaned_data["start_at"],  # aware, in UTC (TIME_ZONE)
                break_glass=form.cleaned_data["break_glass"],
                info=request_info(request),
            )
        except lifecycle.StepUpRequired:
            return redirect_to_step_up(request, reverse("request-new"))
        except lifecycle.InvalidRequest as exc:
            add_lifecycle_errors(form, exc)
        except lifecycle.LifecycleError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Request submitted; approvers have been asked.")
            return redirect("request-detail", request_id=access_request.pk)
    status = 400 if form.errors else 200
    return render(
        request,
        "broker/request_new.html",
        {
            "form": form,
            "profiles": profiles,
            # What this deployment cannot grant, said before anyone asks for it.
            "rows": [(p, unavailable_because(p)) for p in profiles],
        },
        status=status,
    )


@login_required
@require_GET
def request_detail(request: HttpRequest, request_id) -> HttpResponse:
    access_request = visible_request(request.user, request_id)
    grant = Grant.objects.filter(request=access_request).first()
    may_decide = decision_refusal(request.user, access_request) is None
    context = {
        "req": access_request,
        "grant": grant,
        "decisions": access_request.decisions.select_related("approver"),
        "timeline": request_timeline(access_request),
        "steps": request_steps(access_request, grant),
        "risk_factors": risk_factors_seen_by(request.user, access_request),
        "may_decide": may_decide,
        "may_cancel": access_request.requester_id == request.user.pk
        and access_request.status == AccessRequest.Status.PENDING,
        "may_label": label_refusal(request.user, access_request) is None,
        "my_label": access_request.labels.filter(labelled_by=request.user)
        .values_list("label", flat=True)
        .first(),
        "saved": saved_form(request),
        "asked": how_approvers_were_asked(access_request),
        "notifiers": settings.SLACK_ENABLED or settings.AIRLOCK_EMAIL_ENABLED,
    }
    return render(request, "broker/request_detail.html", context)


def _request_page(request, request_id) -> str:
    return reverse("request-detail", kwargs={"request_id": request_id})


@login_required
@require_POST
@step_up_required(return_to=_request_page)
def request_decide(request: HttpRequest, request_id) -> HttpResponse:
    visible_request(request.user, request_id)  # 404 for those who may not even see it
    decision = request.POST.get("decision")
    info = request_info(request)
    try:
        if decision == Approval.Decision.APPROVE:
            lifecycle.access_request_approve(
                request_id=request_id,
                approver=request.user,
                comment=request.POST.get("comment", "")[:2000],
                info=info,
            )
            messages.success(request, "Approved.")
        elif decision == Approval.Decision.DENY:
            lifecycle.access_request_deny(
                request_id=request_id,
                approver=request.user,
                reason=request.POST.get("reason", ""),
                info=info,
            )
            messages.success(request, "Denied.")
        else:
            messages.error(request, "Choose approve or deny.")
    except lifecycle.LifecycleError as exc:
        return lifecycle_error_response(request, exc, _request_page(request, request_id))
    return redirect("request-detail", request_id=request_id)


@login_required
@require_POST
def request_cancel(request: HttpRequest, request_id) -> HttpResponse:
    visible_request(request.user, request_id)
    try:
        lifecycle.access_request_cancel(
            request_id=request_id, actor=request.user, info=request_info(request)
        )
    except lifecycle.LifecycleError as exc:
        return lifecycle_error_response(request, exc, _request_page(request, request_id))
    messages.success(request, "Request cancelled.")
    return redirect("request-detail", request_id=request_id)


@login_required
@require_POST
def request_label(request: HttpRequest, request_id) -> HttpResponse:
    visible_request(request.user, request_id)
    try:
        marked = lifecycle.request_label(
            request_id=request_id,
            labeller=request.user,
            label=request.POST.get("label", ""),
            info=request_info(request),
        )
    except lifecycle.LifecycleError as exc:
        return lifecycle_error_response(request, exc, _request_page(request, request_id))
    messages.success(request, f"Marked {marked.label}: the model learns from it.")
    return redirect("request-detail", request_id=request_id)


@login_required
@require_GET
def grant_detail(request: HttpRequest, grant_id) -> HttpResponse:
    grant = visible_grant(request.user, grant_id)
    limit = extension_limit(grant)
    context = {
        "grant": grant,
        "req": grant.request,
        "revocation_note": get_provider(grant.profile.provider_kind).revocation_note,
        "window_used": window_used(grant, timezone.now()),
        "extension": limit,
        "may_extend": limit is not None
        and limit.offered(grant)
        and grant.request.requester_id == request.user.pk,
        "saved": saved_form(request),
    }
    return render(request, "broker/grant_detail.html", context)


def _grant_page(request, grant_id) -> str:
    return reverse("grant-detail", kwargs={"grant_id": grant_id})


@login_required
@require_POST
@step_up_required(return_to=_grant_page)
def grant_reveal(request: HttpRequest, grant_id) -> HttpResponse:
    visible_grant(request.user, grant_id)
    try:
        credential = lifecycle.grant_reveal(
            grant_id=grant_id, user=request.user, info=request_info(request)
        )
    except lifecycle.LifecycleError as exc:
        return lifecycle_error_response(request, exc, _grant_page(request, grant_id))
    grant = Grant.objects.select_related("request__profile").get(pk=grant_id)
    response = render(
        request,
        "broker/credential.html",
        {"grant": grant, "lines": get_provider(grant.profile.provider_kind).present(credential)},
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def grant_revoke(request: HttpRequest, grant_id) -> HttpResponse:
    visible_grant(request.user, grant_id)
    try:
        lifecycle.grant_revoke(
            grant_id=grant_id,
            actor=request.user,
            reason=request.POST.get("reason", ""),
            info=request_info(request),
        )
    except lifecycle.LifecycleError as exc:
        return lifecycle_error_response(request, exc, _grant_page(request, grant_id))
    messages.success(request, "Access is being revoked.")
    return redirect("grant-detail", grant_id=grant_id)


@login_required
@require_POST
def grant_extend(request: HttpRequest, grant_id) -> HttpResponse:
    visible_grant(request.user, grant_id)
    try:
        duration = parse_duration(request.POST.get("duration", "").strip())
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("grant-detail", grant_id=grant_id)
    try:
        extension = lifecycle.grant_extend_request(
            grant_id=grant_id,
            actor=request.user,
            duration=duration,
            reason=request.POST.get("reason", ""),
            info=request_info(request),
        )
    except lifecycle.InvalidRequest as exc:
        messages.error(request, "; ".join(exc.fields.values()) or exc.message)
        return redirect("grant-detail", grant_id=grant_id)
    except lifecycle.LifecycleError as exc:
        return lifecycle_error_response(request, exc, _grant_page(request, grant_id))
    messages.success(request, "More time asked for.")
    return redirect("request-detail", request_id=extension.pk)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers and reaches its database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


READYZ_CACHE_SECONDS = 10


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database and every provider source answer (for postgres.role,
    a revocation dry run passes). Anyone may ask, so anyone learns ready or not;
    signed-in operators also see yes/no per profile, and the errors are on the
    admins' operations page."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = True
    except DatabaseError:
        checks["database"] = False
    if checks["database"]:
        # Anyone may call this: cache the sources' answers briefly so that
        # calling it often cannot turn into load on Vault, AWS or databases.
        for result in cache.get_or_set("airlock:readyz", provider_health, READYZ_CACHE_SECONDS):
            checks[f"{result['kind']}:{result['profile']}"] = not result["error"]
    ready = all(checks.values())
    body: dict = {"status": "ok" if ready else "unavailable"}
    # Which profiles exist and which sources they use is for operators only.
    if request.user.is_authenticated and (request.user.is_staff or request.user.is_superuser):
        body["checks"] = checks
    return JsonResponse(body, status=200 if ready else 503)
