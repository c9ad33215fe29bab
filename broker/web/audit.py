"""Auditor pages (the auditor group and admins) and the operator view (admins)."""

import tempfile

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from audit import signing, trail
from audit.anchors import anchor_after_commit
from audit.export import FORMATS
from audit.models import AuditEvent, Source
from audit.responses import export_response
from audit.trail import request_info
from broker import lifecycle
from broker.evidence import EvidenceError, current_quarter, evidence_pack_build, parse_period
from broker.health import provider_health
from broker.models import AccessProfile, Alert, Grant
from broker.selectors.audit_log import FilterError, filtered_events
from broker.selectors.requests import is_auditor
from broker.web.responses import lifecycle_error_response
from lib.secrets import MissingSecret

PAGE_SIZE = 50


def _auditor_only(user) -> None:
    if not is_auditor(user):
        raise PermissionDenied("auditors only")


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
        "evidence_period": current_quarter(),
    }
    try:
        context["signing_keys"] = signing.keyring()["keys"]
    except MissingSecret as exc:
        context["signing_error"] = str(exc)
    return render(request, "broker/audit_log.html", context, status=400 if error else 200)


@login_required
@require_GET
def audit_keys(request: HttpRequest) -> HttpResponse:
    """The keyring, as a file for `verify_audit --public-key`."""
    _auditor_only(request.user)
    try:
        response = JsonResponse(signing.keyring(), json_dumps_params={"indent": 2})
    except MissingSecret as exc:
        return render(request, "error.html", {"message": str(exc)}, status=503)
    response["Content-Disposition"] = 'attachment; filename="airlock-audit-keyring.json"'
    return response


@login_required
@require_POST
def audit_verify(request: HttpRequest) -> HttpResponse:
    _auditor_only(request.user)
    report = trail.verify_chain()
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


@login_required
@require_POST
def audit_evidence_pack(request: HttpRequest) -> HttpResponse:
    """The evidence pack of a period (default: this quarter), as `evidence_pack` writes it."""
    _auditor_only(request.user)
    try:
        period = parse_period(request.POST.get("period") or current_quarter())
    except EvidenceError as exc:
        return render(request, "error.html", {"message": str(exc)}, status=400)
    # Nameless, and FileResponse closes it once sent: no context manager can.
    out = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        evidence_pack_build(out, period=period, actor=request.user, info=request_info(request))
    except (EvidenceError, MissingSecret) as exc:
        out.close()
        return render(request, "error.html", {"message": f"no evidence pack: {exc}"}, status=503)
    anchor_after_commit()
    out.seek(0)
    return FileResponse(
        out,
        as_attachment=True,
        filename=f"airlock-evidence-{period.name}.zip",
        content_type="application/zip",
    )


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
