"""Third parties on the web: a sponsor invites, the invitee accepts (then enrols
MFA, before anything else), and the sponsor (or the security role, or an admin)
ends their access or hands the sponsorship over."""

from datetime import UTC, date, datetime, time

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import step_up_required
from audit.trail import request_info
from broker import lifecycle
from broker.models import AccessProfile, ExternalAccess
from broker.policy.externals import external_of, open_invitation, partner_of
from broker.policy.locks import is_security
from broker.selectors.requests import is_overseer
from broker.web.forms import ExternalAcceptForm, ExternalInviteForm
from broker.web.responses import add_lifecycle_errors, lifecycle_error_response


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
    link = request.build_absolute_uri(reverse("external-accept", kwargs={"token": token}))
    # Shown once, here: only its digest is kept.
    return render(request, "broker/external_invited.html", {"access": access, "link": link})


@require_http_methods(["GET", "POST"])
def external_accept(request: HttpRequest, token: str) -> HttpResponse:
    access = open_invitation(token)
    if access is None:
        raise Http404(lifecycle.INVALID_INVITATION)
    partner = partner_of(access.company)
    if partner is not None:
        # Their company's own sign-in, never a password (broker/web/partner_sign_in.py).
        context = {"company": access.company, "token": token}
        return render(request, "broker/external_accept.html", context)
    form = ExternalAcceptForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = lifecycle.external_accept(
                token=token, password=form.cleaned_data["password"], info=request_info(request)
            )
        except lifecycle.NotFound as exc:
            raise Http404(str(exc)) from None
        except lifecycle.LifecycleError as exc:
            add_lifecycle_errors(form, exc)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome. Set up your authenticator app first.")
            return redirect("mfa-enrol")
    # 200 even for a refused form: a 4xx would write this URL, token and all, to the log.
    return render(request, "broker/external_accept.html", {"form": form})


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
