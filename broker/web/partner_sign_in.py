"""Third parties signing in through their company's own identity provider (where
`AIRLOCK_PARTNER_OIDC` configures one): the invitee accepts there, which binds
the account to that identity; later sign-ins match that binding only, and only
for the partner's own people. The code flow's state and nonce live in the
session; the partner's token is checked in accounts/oidc.py.

Each partner has its own callback URL, and a code arriving at one partner's is
never sent to another's token endpoint: with one callback for all, a rogue
partner could bounce a browser through another partner's sign-in and receive
that partner's code (the identity provider mix-up attack)."""

import hmac
import secrets
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.oidc import partner_identity
from audit import trail
from audit.actions import Action
from audit.trail import request_info
from broker import lifecycle
from broker.policy.externals import (
    partner_account,
    partner_idp,
    partner_of,
)
from broker.web.auth import SIGN_IN_BACKEND
from broker.web.externals import INVITATION_SESSION_KEY, invitation_in_session

SESSION_KEY = "partner_sign_in"
ACCEPT, SIGN_IN = "accept", "sign-in"


def _callback_url(request: HttpRequest, partner: str) -> str:
    return request.build_absolute_uri(reverse("partner-sign-in-callback", args=[partner]))


def _start(
    request: HttpRequest, partner: str, purpose: str, invitation_sha256: str = ""
) -> HttpResponse:
    idp = partner_idp(partner)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    request.session[SESSION_KEY] = {
        "partner": partner,
        "purpose": purpose,
        "invitation": invitation_sha256,
        "state": state,
        "nonce": nonce,
    }
    query = urlencode(
        {
            "response_type": "code",
            "client_id": idp.client_id,
            "scope": idp.scopes,
            "redirect_uri": _callback_url(request, partner),
            "state": state,
            "nonce": nonce,
        }
    )
    separator = "&" if "?" in idp.authorization_endpoint else "?"
    return redirect(f"{idp.authorization_endpoint}{separator}{query}")


@require_GET
def partner_sign_in(request: HttpRequest, partner: str) -> HttpResponse:
    if partner_idp(partner) is None:
        raise Http404("no such partner")
    return _start(request, partner, SIGN_IN)


@require_POST
def external_accept_through_partner(request: HttpRequest) -> HttpResponse:
    """From the invitation's second page (its digest in the session)."""
    access = invitation_in_session(request)
    partner = partner_of(access.company) if access is not None else None
    if partner is None:
        raise Http404(lifecycle.INVALID_INVITATION)
    return _start(request, partner, ACCEPT, access.invitation_sha256)


def _refused(request: HttpRequest, message: str, partner: str = "", subject: str = ""):
    """Back to the sign-in page, saying why; on record once a partner was reached
    (a callback nobody started here names nobody and changes nothing)."""
    if partner:
        trail.record(
            action=Action.AUTH_LOGIN_FAILED,
            info=request_info(request),
            data={"username": "", "partner": partner, "subject": subject, "why": message},
        )
    messages.error(request, message)
    return redirect("login")


@require_GET
def partner_sign_in_callback(request: HttpRequest, partner: str) -> HttpResponse:
    started = request.session.pop(SESSION_KEY, None)
    state = request.GET.get("state", "")
    if (
        not isinstance(started, dict)
        or started.get("partner") != partner
        or not hmac.compare_digest(state.encode(), str(started.get("state", "")).encode())
    ):
        return _refused(request, "This sign-in was not started here, or is over: start again.")
    idp = partner_idp(partner)
    if idp is None:
        return _refused(request, "That partner's sign-in is no longer configured.", partner)
    if "error" in request.GET:
        return _refused(request, f"{idp.company}'s sign-in did not sign you in.", partner)
    # RFC 9207: an identity provider that names itself must be the one asked.
    if request.GET.get("iss", idp.issuer) != idp.issuer:
        return _refused(request, f"That answer did not come from {idp.company}.", partner)
    identity = partner_identity(
        request, idp, nonce=started["nonce"], redirect_uri=_callback_url(request, partner)
    )
    if identity is None:
        return _refused(request, f"{idp.company}'s sign-in could not be verified.", partner)
    if started["purpose"] == ACCEPT:
        try:
            user = lifecycle.external_accept_through_partner(
                invitation_sha256=started["invitation"],
                partner=partner,
                identity=identity,
                info=request_info(request),
            )
        except lifecycle.LifecycleError as exc:
            return _refused(request, f"Not accepted: {exc}.", partner, identity.subject)
        request.session.pop(INVITATION_SESSION_KEY, None)
        login(request, user, backend=SIGN_IN_BACKEND)
        messages.success(request, "Welcome. Set up your authenticator app first.")
        return redirect("mfa-enrol")
    user = partner_account(partner, identity.issuer, identity.subject)
    if user is None or not user.is_active:
        return _refused(
            request,
            f"No active Airlock account is bound to this {idp.company} identity: "
            "ask your sponsor for an invitation.",
            partner,
            identity.subject,
        )
    login(request, user, backend=SIGN_IN_BACKEND)
    return redirect("home")
