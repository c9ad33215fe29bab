"""Access reviews on the web: the campaigns one may see, starting one, deciding
each person after MFA, the catalog patch and the sealed evidence."""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import saved_form, step_up_required
from audit.review_evidence import as_bytes
from audit.trail import request_info
from broker import lifecycle
from broker.catalog.patch import Removal, removal_patch
from broker.models import AccessProfile, ReviewRemoval
from broker.policy.locks import is_security
from broker.policy.reviews import is_reviewer, review_refusal
from broker.selectors.reviews import (
    review_items,
    sees_whole_review,
    visible_review,
    visible_reviews,
    whole_review,
)
from broker.web.forms import AccessReviewForm
from broker.web.responses import lifecycle_error_response


def may_start(user) -> bool:
    return is_security(user) or user.is_superuser


def _review_page(request, review_id, *args, **kwargs) -> str:
    return reverse("access-review", kwargs={"review_id": review_id})


@login_required
@require_GET
def access_reviews(request: HttpRequest) -> HttpResponse:
    return _render_list(request, AccessReviewForm())


def _render_list(request, form: AccessReviewForm, status: int = 200) -> HttpResponse:
    context = {
        "reviews": visible_reviews(request.user),
        "form": form,
        "may_start": may_start(request.user),
    }
    return render(request, "broker/access_reviews.html", context, status=status)


@login_required
@require_POST
def access_review_new(request: HttpRequest) -> HttpResponse:
    if not may_start(request.user):
        raise PermissionDenied("the security role and admins start access reviews")
    form = AccessReviewForm(request.POST)
    if not form.is_valid():
        return _render_list(request, form, status=400)
    data = form.cleaned_data
    kind, _, name = data["subject"].partition(":")
    profile = AccessProfile.objects.filter(slug=name).first() if kind == "profile" else None
    try:
        review = lifecycle.access_review_start(
            name=data["name"],
            profile=profile,
            group_name=name if kind == "group" else "",
            takes=timedelta(days=data["days"]),
            unreviewed=data["unreviewed"],
            by_managers=data["reviewers"] == "managers",
            actor=request.user,
            info=request_info(request),
        )
    except lifecycle.LifecycleError as exc:
        return lifecycle_error_response(request, exc, reverse("access-reviews"))
    messages.success(request, f"Started {review.name}: {review.items.count()} person(s).")
    return redirect("access-review", review_id=review.pk)


@login_required
@require_GET
def access_review(request: HttpRequest, review_id) -> HttpResponse:
    review = visible_review(request.user, review_id)
    items = list(review_items(request.user, review))
    # Back from the MFA page: the note typed before it, on the same person's row.
    saved = saved_form(request)
    for item in items:
        item.may_decide = review_refusal(request.user, item) is None
        item.saved_note = saved.get("note", "") if saved.get("item") == str(item.pk) else ""
    whole = sees_whole_review(request.user, review)
    patch, notes = _patch(review) if whole else ("", [])
    context = {
        "review": review,
        "items": items,
        "whole": whole,
        "patch": patch,
        "patch_notes": notes,
        "is_reviewer": is_reviewer(request.user, review),
        "may_lift": is_security(request.user),
        "saved": saved,
    }
    return render(request, "broker/access_review.html", context)


@login_required
@require_POST
@step_up_required(return_to=_review_page)
def access_review_decide(request: HttpRequest, review_id, item_id: int) -> HttpResponse:
    review = visible_review(request.user, review_id)
    if not review_items(request.user, review).filter(pk=item_id).exists():
        raise Http404("no such person in this review")
    try:
        item = lifecycle.access_review_decide(
            item_id=item_id,
            reviewer=request.user,
            decision=request.POST.get("decision", ""),
            note=request.POST.get("note", "")[:5000],
            info=request_info(request),
        )
    except lifecycle.LifecycleError as exc:
        return lifecycle_error_response(request, exc, _review_page(request, review_id))
    messages.success(request, f"{item.person}: {item.decision}.")
    return redirect("access-review", review_id=review_id)


@login_required
@require_GET
def access_review_evidence(request: HttpRequest, review_id) -> HttpResponse:
    review = whole_review(request.user, review_id)
    if review.evidence is None:
        raise Http404("the review is still open: its evidence is sealed when it closes")
    response = HttpResponse(as_bytes(review.evidence), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="access-review-{review.pk}.json"'
    return response


@login_required
@require_GET
def access_review_patch(request: HttpRequest, review_id) -> HttpResponse:
    review = whole_review(request.user, review_id)
    patch, notes = _patch(review)
    body = "".join(f"# {note}\n" for note in notes) + patch
    response = HttpResponse(body or "# nothing to change\n", content_type="text/x-diff")
    response["Content-Disposition"] = f'attachment; filename="access-review-{review.pk}.patch"'
    return response


def _patch(review) -> tuple[str, list[str]]:
    """The catalog change that makes the review's removals (still holding) permanent."""
    removals = [
        Removal(
            person=r.person.get_username(),
            group=r.group_name,
            profile=r.profile.slug if r.profile_id else "",
        )
        for r in ReviewRemoval.objects.filter(
            item__review=review, lifted_at__isnull=True
        ).select_related("person", "profile")
    ]
    if not removals:
        return "", []
    path = settings.AIRLOCK_CATALOG
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError:
        return "", ["the catalog file cannot be read by Airlock here: no patch"]
    return removal_patch(text, path, removals)


@login_required
@require_POST
@step_up_required(return_to=lambda request, **kwargs: reverse("access-reviews"))
def review_removal_lift(request: HttpRequest, removal_id: int) -> HttpResponse:
    removal = ReviewRemoval.objects.filter(pk=removal_id).select_related("item__review").first()
    if removal is None:
        raise Http404("no such removal")
    review = visible_review(request.user, removal.item.review_id)
    try:
        lifecycle.review_removal_lift(
            removal_id=removal_id,
            actor=request.user,
            reason=request.POST.get("reason", ""),
            info=request_info(request),
        )
    except lifecycle.LifecycleError as exc:
        return lifecycle_error_response(request, exc, _review_page(request, review.pk))
    messages.success(request, f"Lifted: {removal.person} may be given it again by the catalog.")
    return redirect("access-review", review_id=review.pk)
