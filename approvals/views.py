from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from approvals.selectors import annotate_queue, approvable_profiles, approval_queue
from broker.durations import parse_duration

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
