from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import throttle
from accounts.decorators import interrupted_form, saved_form, step_up_required
from accounts.selectors import (
    MFA_SESSION_KEY,
    pending_authenticator,
    recent_step_up,
    recent_step_up_in_session,
    wants_approval_emails,
)
from accounts.services import (
    MfaError,
    backup_codes_left,
    has_mfa,
    mfa_backup_codes_regenerate,
    mfa_enrol_confirm,
    mfa_enrol_start,
    mfa_remove,
    mfa_step_up,
    notification_settings_update,
)
from accounts.tokens import TokenError, token_create, token_revoke, tokens_of
from audit.trail import request_info

ENROL_SESSION_KEY = "mfa_enrol_device"


class LoginView(auth_views.LoginView):
    """Django's sign-in, refusing a username or address after repeated failures."""

    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        # Third parties whose company has its own identity provider sign in there.
        partners = [(key, idp.company) for key, idp in settings.AIRLOCK_PARTNER_OIDC.items()]
        return super().get_context_data(**kwargs, partner_sign_ins=partners)

    def post(self, request, *args, **kwargs):
        # Raw, not cut: the throttle normalises it as the sign-in form does, and a
        # cut before stripping would let " " * 150 + "carol" escape carol's counter.
        username = request.POST.get("username", "")
        ip = request.META.get("REMOTE_ADDR")
        if not throttle.login_attempt(username, ip):
            minutes = int(settings.AIRLOCK_LOGIN_LOCKOUT.total_seconds() // 60)
            # An unbound form: a bound one would check the password as soon as its
            # errors are read, which is what the throttle is there to stop.
            form = self.get_form_class()(request)
            context = self.get_context_data(
                form=form, locked=f"Too many failed sign-ins. Try again in {minutes} minutes."
            )
            return self.render_to_response(context, status=429)
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            throttle.login_succeeded(username, ip)
        return response


def _safe_next(request: HttpRequest, default: str = "home") -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse(default)


@login_required
@require_http_methods(["GET", "POST"])
def notifications(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        notification_settings_update(
            user=request.user, email_approvals=request.POST.get("email_approvals") == "on"
        )
        messages.success(request, "Saved.")
        return redirect("notifications")
    context = {
        "email_approvals": wants_approval_emails(request.user),
        "email_enabled": settings.AIRLOCK_EMAIL_ENABLED,
        "email": request.user.email,
    }
    return render(request, "accounts/notifications.html", context)


@login_required
@require_GET
def mfa_settings(request: HttpRequest) -> HttpResponse:
    context = {
        "enrolled": has_mfa(request.user),
        "backup_codes_left": backup_codes_left(request.user),
        "stepped_up_at": recent_step_up(request.user),
    }
    return render(request, "accounts/mfa_settings.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def mfa_verify(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    if not has_mfa(request.user):
        messages.error(request, "Set up an authenticator app first.")
        return redirect("mfa-enrol")
    error = None
    if request.method == "POST":
        try:
            verified_at = mfa_step_up(
                user=request.user, code=request.POST.get("code", ""), info=request_info(request)
            )
        except MfaError as exc:
            error = str(exc)
        else:
            request.session[MFA_SESSION_KEY] = verified_at.isoformat()
            if interrupted_form(request, next_url):
                messages.info(request, "Code verified. Nothing was done yet: confirm below.")
            return redirect(next_url)
    status = 400 if error else 200
    return render(
        request, "accounts/mfa_verify.html", {"next": next_url, "error": error}, status=status
    )


@login_required
@require_http_methods(["GET", "POST"])
def mfa_enrol(request: HttpRequest) -> HttpResponse:
    # Replacing an existing authenticator needs proof of the current one, here.
    if has_mfa(request.user) and not recent_step_up_in_session(request):
        return redirect(f"{reverse('mfa-verify')}?next={reverse('mfa-enrol')}")
    pending = pending_authenticator(request.user, request.session.get(ENROL_SESSION_KEY))
    error = None
    if request.method == "POST" and "restart" in request.POST:
        pending = None  # asked for a new key: the one shown before is dropped below
    elif request.method == "POST":
        try:
            codes = mfa_enrol_confirm(
                user=request.user,
                device_id=pending.pk if pending else 0,
                code=request.POST.get("code", ""),
                info=request_info(request),
            )
        except MfaError as exc:
            error = str(exc)
        else:
            request.session.pop(ENROL_SESSION_KEY, None)
            request.session[MFA_SESSION_KEY] = timezone.now().isoformat()  # the code proved it
            return render(request, "accounts/backup_codes.html", {"codes": codes, "enrolled": True})
    # The key the phone scanned stays until it is confirmed or the person starts
    # again: a mistyped code must not swap it for one the phone has never seen.
    if pending is None:
        pending = mfa_enrol_start(user=request.user)
        request.session[ENROL_SESSION_KEY] = pending.pk
    context = {"device": pending, "error": error}
    return render(request, "accounts/mfa_enrol.html", context, status=400 if error else 200)


def _mfa_page(request: HttpRequest) -> str:
    return reverse("mfa-settings")


@login_required
@require_POST
@step_up_required(return_to=_mfa_page, in_this_session=True)
def mfa_backup_codes(request: HttpRequest) -> HttpResponse:
    codes = mfa_backup_codes_regenerate(user=request.user, info=request_info(request))
    return render(request, "accounts/backup_codes.html", {"codes": codes})


@login_required
@require_POST
@step_up_required(return_to=_mfa_page, in_this_session=True)
def mfa_remove_view(request: HttpRequest) -> HttpResponse:
    mfa_remove(user=request.user, info=request_info(request))
    messages.success(request, "Your authenticator and backup codes were removed.")
    return redirect("mfa-settings")


@login_required
@require_GET
def api_tokens(request: HttpRequest) -> HttpResponse:
    context = {
        "tokens": tokens_of(request.user),
        "max_days": settings.AIRLOCK_API_TOKEN_MAX_DAYS,
        "saved": saved_form(request),
    }
    return render(request, "accounts/api_tokens.html", context)


def _tokens_page(request: HttpRequest) -> str:
    return reverse("api-tokens")


@login_required
@require_POST
@step_up_required(return_to=_tokens_page, in_this_session=True)
def api_token_create(request: HttpRequest) -> HttpResponse:
    """A token can do almost all a session can, for weeks: minting one takes MFA."""
    try:
        days = int(request.POST.get("days", "30"))
    except ValueError:
        days = 0
    try:
        token, plaintext = token_create(
            user=request.user,
            name=request.POST.get("name", ""),
            days=days,
            info=request_info(request),
        )
    except TokenError as exc:
        messages.error(request, str(exc))
        return redirect("api-tokens")
    return render(
        request, "accounts/api_token_created.html", {"token": token, "plaintext": plaintext}
    )


@login_required
@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token = token_revoke(user=request.user, token_id=token_id, info=request_info(request))
    except TokenError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Token {token.name} revoked.")
    return redirect("api-tokens")
