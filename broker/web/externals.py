"""Third parties on the web: a sponsor invites, the invitee accepts (then enrols
MFA, before anything else), and the sponsor (or the security role, or an admin)
ends their access or hands the sponsorship over."""

from datetime import UTC, date, datetime, time

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import step_up_required
from audit.trail import request_info
from broker import lifecycle
from broker.models import AccessProfile, ExternalAccess
from broker.policy.externals import (
    external_of,
    open_invitation,
    open_invitation_by_digest,
    partner_of,
)
from broker.policy.locks import is_security
from broker.selectors.requests import is_overseer
from broker.web.auth import SIGN_IN_BACKEND
from broker.web.forms import ExternalAcceptForm, ExternalInvitationForm, ExternalInviteForm
from broker.web.responses import add_lifecycle_errors, lifecycle_error_response

# The digest of the invitation being accepted, between its two pages.
INVITATION_SESSION_KEY = "external_invitation"


def _externals_page(request, *args, **kwargs) -> str:
    return reverse("externals")


def _visible_externals(user):
    externals = ExternalAccess.objects.select_related("user", "sponsor").order_by("user__username")
    if is_overseer(user):
        return externals
    return externals.filter(sponsor=user)


@login_required
@require_GET
def externals(request: HttpRequest) -> HttpResponse:
    return _render(request, None)


def _render(request, form, status: int = 200) -> HttpResponse:
    employee = external_of(request.user) is None
    sponsorable = lifecycle.sponsorable_profiles(request.user) if employee else []
    context = {
        "externals": _visible_externals(request.user).prefetch_related("profiles"),
        "form": form or ExternalInviteForm(sponsorable=sponsorable),
        "may_invite": bool(sponsorable),
        "may_manage_all": is_security(request.user) or request.user.is_superuser,
    }
    return render(request, "broker/externals.html", context, status=status)


@login_required
@require_POST
@step_up_required(return_to=_externals_page)
def external_invite(request: HttpRequest) -> HttpResponse:
    sponsorable = lifecycle.sponsorable_profiles(request.user)
    form = ExternalInviteForm(request.POST, sponsorable=sponsorable)
    if not form.is_valid():
        return _render(request, form, status=400)
    data = form.cleaned_data
    try:
        access, token = lifecycle.external_invite(
            sponsor=request.user,
            username=data["username"],
            email=data["email"],
            company=data["company"],
            contract_ends_at=datetime.combine(data["contract_ends"], time.min, tzinfo=UTC),
            profiles=list(AccessProfile.objects.filter(slug__in=data["profiles"])),
            info=request_info(request),
        )
    except lifecycle.LifecycleError as exc:
        if isinstance(exc, lifecycle.InvalidRequest):
            add_lifecycle_errors(form, exc)
            return _render(request, form, status=400)
        return lifecycle_error_response(request, exc, reverse("externals"))
    # The code after "#": browsers never send a fragment, so no access log sees it.
    link = f"{request.build_absolute_uri(reverse('external-accept'))}#{token}"
    # Shown once, here: only its digest is kept.
    return render(request, "broker/external_invited.html", {"access": access, "link": link})


def invitation_in_session(request: HttpRequest) -> ExternalAccess | None:
    """The invitation being accepted in this session, while it may still be used."""
    digest = request.session.get(INVITATION_SESSION_KEY, "")
    return open_invitation_by_digest(digest) if digest else None


def _continue_accepting(request: HttpRequest, access: ExternalAccess) -> HttpResponse:
    """Only the invitation's digest waits in the session, for the next page."""
    request.session[INVITATION_SESSION_KEY] = access.invitation_sha256
    return redirect("external-accept-continue")


@require_http_methods(["GET", "POST"])
def external_accept(request: HttpRequest) -> HttpResponse:
    """The invitation's code, posted (by airlock.js from the link, or typed): only
    its digest is kept, in the session, for the next page."""
    form = ExternalInvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        access = open_invitation(form.cleaned_data["token"])
        if access is not None:
            return _continue_accepting(request, access)
        form.add_error("token", lifecycle.INVALID_INVITATION)
    status = 400 if form.errors else 200
    return render(request, "broker/external_invitation.html", {"form": form}, status=status)


@require_GET
def external_accept_old_link(request: HttpRequest, token: str) -> HttpResponse:
    """A link issued before the code moved after "#" (they last 7 days): it still
    works, and answers a redirect, never a 404 that would log the code."""
    access = open_invitation(token)
    if access is None:
        messages.error(request, f"Not accepted: {lifecycle.INVALID_INVITATION}.")
        return redirect("external-accept")
    return _continue_accepting(request, access)


@require_http_methods(["GET", "POST"])
def external_accept_continue(request: HttpRequest) -> HttpResponse:
    access = invitation_in_session(request)
    if access is None:
        messages.error(request, f"Not accepted: {lifecycle.INVALID_INVITATION}.")
        return redirect("external-accept")
    if partner_of(access.company) is not None:
        # Their company's own sign-in, never a password (broker/web/partner_sign_in.py).
        context = {"access": access, "partner": True}
        return render(request, "broker/external_accept.html", context)
    form = ExternalAcceptForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = lifecycle.external_accept(
                invitation_sha256=access.invitation_sha256,
                password=form.cleaned_data["password"],
                info=request_info(request),
            )
        except lifecycle.LifecycleError as exc:
            add_lifecycle_errors(form, exc)
        else:
            del request.session[INVITATION_SESSION_KEY]
            login(request, user, backend=SIGN_IN_BACKEND)
            messages.success(request, "Welcome. Set up your authenticator app first.")
            return redirect("mfa-enrol")
    status = 400 if form.errors else 200
    context = {"access": access, "form": form}
    return render(request, "broker/external_accept.html", context, status=status)


@login_required
@require_POST
@step_up_required(return_to=_externals_page)
def external_end(request: HttpRequest, external_id: int) -> HttpResponse:
    try:
        access = lifecycle.external_end(
            external_id=external_id,
            actor=request.user,
            reason=request.POST.get("reason", ""),
            info=request_info(request),
        )
    except lifecycle.LifecycleError as exc:
        return lifecycle_error_response(request, exc, reverse("externals"))
    messages.success(request, f"{access.user}'s access has ended.")
    return redirect("externals")


@login_required
@require_POST
@step_up_required(return_to=_externals_page)
def external_hand_over(request: HttpRequest, external_id: int) -> HttpResponse:
    username = request.POST.get("sponsor", "").strip()
    new_sponsor = get_user_model().objects.filter(username=username).first()
    try:
        access = lifecycle.external_hand_over(
            external_id=external_id,
            actor=request.user,
            new_sponsor=new_sponsor,
            info=request_info(request),
        )
    except lifecycle.LifecycleError as exc:
        return lifecycle_error_response(request, exc, reverse("externals"))
    messages.success(request, f"{access.user} is now sponsored by {access.sponsor}.")
    return redirect("externals")


@login_required
@require_POST
@step_up_required(return_to=_externals_page)
def external_contract(request: HttpRequest, external_id: int) -> HttpResponse:
    try:
        ends = date.fromisoformat(request.POST.get("contract_ends", ""))
    except ValueError:
        messages.error(request, "Give the contract's new end as a date (YYYY-MM-DD).")
        return redirect("externals")
    try:
        access = lifecycle.external_contract_change(
            external_id=external_id,
            actor=request.user,
            contract_ends_at=datetime.combine(ends, time.min, tzinfo=UTC),
            info=request_info(request),
        )
    except lifecycle.LifecycleError as exc:
        return lifecycle_error_response(request, exc, reverse("externals"))
    messages.success(
        request, f"{access.user}'s contract now ends {access.contract_ends_at:%Y-%m-%d}."
    )
    return redirect("externals")
