from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from audit.trail import request_info
from broker import lifecycle
from broker.selectors.queue import annotate_queue, approvable_profiles, approval_queue, reviews_for
from broker.selectors.requests import visible_request
from broker.web.responses import lifecycle_error_response
from lib.durations import parse_duration

PAGE_SIZE = 25


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    profile = request.GET.get("profile", "")[:63]
    requester = request.GET.get("requester", "")[:150]
    older_text = request.GET.get("older_than", "").strip()
    error = None
    try:
        older_than = parse_duration(older_text) if older_text else None
    except ValueError as exc:
        older_than, error = None, str(exc)
    page = Paginator(
        approval_queue(request.user, profile=profile, requester=requester, older_than=older_than),
        PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "rows": annotate_queue(list(page.object_list)),
        "profiles": approvable_profiles(request.user),
        "filters": {"profile": profile, "requester": requester, "older_than": older_text},
        "error": error,
    }
    return render(request, "approvals/queue.html", context, status=400 if error else 200)


@login_required
@require_GET
def reviews(request: HttpRequest) -> HttpResponse:
    """Break-glass reviews of the profiles I approve (auditors see all)."""
    visible = reviews_for(request.user)
    context = {
        "open": visible.filter(closed_at=None).order_by("due_at"),
        "closed": visible.exclude(closed_at=None).order_by("-closed_at")[:50],
        "now": timezone.now(),
    }
    return render(request, "approvals/reviews.html", context)


@login_required
@require_POST
def review_close(request: HttpRequest, request_id) -> HttpResponse:
    visible_request(request.user, request_id)
    try:
        lifecycle.break_glass_review_close(
            request_id=request_id,
            reviewer=request.user,
            notes=request.POST.get("notes", ""),
            info=request_info(request),
        )
    except lifecycle.LifecycleError as exc:
        return lifecycle_error_response(request, exc, reverse("reviews"))
    messages.success(request, "Review closed.")
    return redirect("reviews")
