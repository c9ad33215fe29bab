"""The locks page: the security role places and lifts locks; auditors look."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import saved_form, step_up_required
from audit.trail import request_info
from broker import lifecycle
from broker.models import Lock
from broker.policy.locks import holding_locks, is_security, known_targets
from broker.selectors.requests import is_overseer
from broker.web.forms import LockForm
from broker.web.responses import add_lifecycle_errors, lifecycle_error_response

RECENTLY_ENDED = 20


def _locks_page(request, *args, **kwargs) -> str:
    return reverse("locks")


@login_required
@require_GET
def locks(request: HttpRequest) -> HttpResponse:
    return _render(request, LockForm(initial=saved_form(request)))


def _render(request: HttpRequest, form: LockForm, status: int = 200) -> HttpResponse:
    if not is_overseer(request.user):
        raise PermissionDenied("the security role and auditors only")
    holding = list(holding_locks())
    held = {lock.pk for lock in holding}
    ended = Lock.objects.exclude(pk__in=held).select_related(
        "user", "profile", "placed_by", "ended_by"
    )
    context = {
        "form": form,
        "holding": holding,
        "ended": ended.order_by("-placed_at")[:RECENTLY_ENDED],
        "targets": sorted(known_targets().items()),
        "may_lock": is_security(request.user),
    }
    return render(request, "broker/locks.html", context, status=status)


@login_required
@require_POST
@step_up_required(return_to=_locks_page)
def lock_new(request: HttpRequest) -> HttpResponse:
    form = LockForm(request.POST)
    if not form.is_valid():
        return _render(request, form, status=400)
    data = form.cleaned_data
    try:
        lock, changes = lifecycle.lock_place(
            actor=request.user,
            scope=data["scope"],
            subject=data["subject"],
            reason=data["reason"],
            duration=data["duration"],
            info=request_info(request),
        )
    except lifecycle.LifecycleError as exc:
        if isinstance(exc, lifecycle.NotAllowed):
            return lifecycle_error_response(request, exc, reverse("locks"))
        add_lifecycle_errors(form, exc)
        return _render(request, form, status=400)
    revoked = sum(change.action == "revoked" for change in changes)
    withdrawn = sum(change.action == "withdrawn" for change in changes)
    messages.success(
        request,
        f"Locked {lock.scope} {lock.subject}: {revoked} grant(s) being revoked at the source, "
        f"{withdrawn} request(s) withdrawn.",
    )
    return redirect("locks")


@login_required
@require_POST
@step_up_required(return_to=_locks_page)
def lock_lift(request: HttpRequest, lock_id) -> HttpResponse:
    try:
        lock = lifecycle.lock_lift(
            lock_id=lock_id,
            actor=request.user,
            reason=request.POST.get("reason", "")[:2000],
            info=request_info(request),
        )
    except lifecycle.LifecycleError as exc:
        return lifecycle_error_response(request, exc, reverse("locks"))
    if lock.ended_at is None:
        messages.success(
            request, "Lift proposed: a second person of the security role must confirm it."
        )
    else:
        messages.success(request, f"Lifted the lock on {lock.scope} {lock.subject}.")
    return redirect("locks")
