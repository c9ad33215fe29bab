from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.services import has_mfa
from broker.policy.externals import external_of

# Scripts and styles come only from our own static files: no inline code, no
# third parties. data: images are the server-rendered QR code.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            # Pages for a signed-in user may name grants and people: never cache them.
            response["Cache-Control"] = "no-store"
        return response


class ExternalAccountsMiddleware:
    """Third parties (broker/lifecycle/externals.py) enrol MFA before anything else,
    and never hold API tokens or Slack links: the web, after MFA, is their door.
    (Once their access is over, broker/web/auth.py restores no session of theirs.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and external_of(user) is not None:
            path = request.path
            if path.startswith((reverse("api-tokens"), reverse("slack-link"))):
                raise PermissionDenied("not for external accounts")
            before_mfa = (reverse("mfa-enrol"), reverse("logout"), settings.STATIC_URL)
            if not has_mfa(user) and not path.startswith(before_mfa):
                return redirect("mfa-enrol")
        return self.get_response(request)
