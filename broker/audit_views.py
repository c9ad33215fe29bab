"""Auditor pages (the auditor group and admins) and the operator view (admins)."""

from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from broker import audit, lifecycle
from broker.audit_export import FORMATS, parse_moment
from broker.health import provider_health
from broker.models import AccessProfile, AccessRequest, Alert, AuditEvent, Grant, Source
from broker.selectors import is_auditor
from broker.web import lifecycle_error_response, request_info

PAGE_SIZE = 50


def _auditor_only(user) -> None:
    if not is_auditor(user):
        raise PermissionDenied("auditors only")


class FilterError(ValueError):
    pass


def _date(text: str, end_of_day: bool) -> datetime | None:
    if not text:
        return None
    try:
        return parse_moment(text, end_of_day=end_of_day)
    except ValueError as exc:
        raise FilterError(str(exc)) from None


def filtered_events(params) -> tuple[QuerySet, dict[str, str]]:
    """Audit events matching the page's filters; raises FilterError on bad input."""
    filters = {
        key: params.get(key, "").strip()[:150]
        for key in ("since", "until", "actor", "action", "source", "profile")
    }
    events = AuditEvent.objects.all()
    if since := _date(filters["since"], end_of_day=False):
        events = events.filter(created_at__gte=since)
    if until := _date(filters["until"], end_of_day=True):
        events = events.filter(created_at__lte=until)
    if filters["actor"]:
        events = events.filter(actor=filters["actor"])
    if filters["action"]:
        events = events.filter(action__startswith=filters["action"])
    if filters["source"]:
        if filters["source"] not in Source.values:
            raise FilterError(f"unknown channel {filters['source']!r}")
        events = events.filter(source=filters["source"])
    if filters["profile"]:
        requests = AccessRequest.objects.filter(profile__slug=filters["profile"])
        request_ids = [str(pk) for pk in requests.values_list("pk", flat=True)]
        grant_ids = [
            str(pk)
            for pk in Grant.objects.filter(request__in=requests).values_list("pk", flat=True)
        ]
        events = events.filter(
            Q(target_type="accessrequest", target_id__in=request_ids)
            | Q(target_type="grant", target_id__in=grant_ids)
        )
    return events, filters


@login_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    _auditor_only(request.user)
    error = None
    try:
        events, filters = filtered_events(request.GET)
    except FilterError as exc:
        events, filters, error = AuditEvent.objects.none(), dict(request.GET.items()), str(exc)
    page = Paginator(events.order_by("-seq"), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "alerts": Alert.objects.all()[:20],
        "page": page,
        "filters": filters,
        "error": error,
        "sources": Source.values,
        "profiles": AccessProfile.objects.values_list("slug", flat=True),
        "query": request.GET.urlencode(),
    }
    return render(request, "broker/audit_log.html", context, status=400 if error else 200)


@login_required
@require_POST
def audit_verify(request: HttpRequest) -> HttpResponse:
    _auditor_only(request.user)
    report = audit.verify_chain()
    if report.intact:
        messages.success(
            request, f"Audit chain intact: {report.count} events, head {report.head_hash}."
        )
    else:
        messages.error(request, f"Audit chain BROKEN: {report.error}")
    return redirect("audit-log")


@login_required
@require_GET
def audit_export(request: HttpRequest) -> HttpResponse:
    _auditor_only(request.user)
    export_format = request.GET.get("format", "csv")
    if export_format not in FORMATS:
        message = f"unknown format {export_format!r} (one of {', '.join(sorted(FORMATS))})"
        return render(request, "error.html", {"message": message}, status=400)
    try:
        events, filters = filtered_events(request.GET)
    except FilterError as exc:
        return render(request, "error.html", {"message": str(exc)}, status=400)
    return export_response(request, events, filters, export_format)


def export_response(
    request: HttpRequest,
    events: QuerySet,
    filters: dict[str, str],
    export_format: str,
    source: str = Source.WEB,
) -> StreamingHttpResponse:
    """Record the export, then stream it (the web page and the API)."""
    with transaction.atomic():
        audit.record(
            action="audit.exported",
            info=request_info(request, source=source),
            actor=request.user,
            data={"format": export_format, "filters": {k: v for k, v in filters.items() if v}},
        )
    rows, content_type, extension = FORMATS[export_format]
    response = StreamingHttpResponse(
        rows(audit.event_records(events.order_by("seq"))), content_type=content_type
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="airlock-audit-{stamp}.{extension}"'
    return response


def _admin_only(user) -> None:
    if not user.is_superuser:
        raise PermissionDenied("administrators only")


@login_required
@require_GET
def ops(request: HttpRequest) -> HttpResponse:
    _admin_only(request.user)
    troubled = (
        Grant.objects.filter(status__in=[Grant.Status.FAILED, Grant.Status.REVOKE_FAILED])
        .select_related("request__profile", "request__requester")
        .order_by("-ended_at")[:200]
    )
    context = {"grants": troubled, "health": provider_health()}
    return render(request, "broker/ops.html", context)


@login_required
@require_POST
def ops_retry_revocation(request: HttpRequest, grant_id) -> HttpResponse:
    _admin_only(request.user)
    try:
        lifecycle.grant_retry_revocation(
            grant_id=grant_id, actor=request.user, info=request_info(request)
        )
    except lifecycle.LifecycleError as exc:
        return lifecycle_error_response(request, exc, "/ops/")
    messages.success(request, "Revocation queued again.")
    return redirect("ops")
