from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.selectors import recent_step_up, recent_step_up_in_session

SAVED_FORM_KEY = "step_up_saved_form"


def step_up_required(return_to: Callable[..., str], *, in_this_session: bool = False):
    """Require a recent MFA verification for a POST view (`in_this_session`: one
    made in this web session, for what outlives it).

    Without one, the submitted fields (never the CSRF token) are kept in the
    session and the user goes through the verify page, then back to the page
    `return_to(request, **kwargs)` names, where `saved_form` restores them.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            stepped_up = recent_step_up_in_session if in_this_session else _on_the_account
            if stepped_up(request):
                return view(request, *args, **kwargs)
            return redirect_to_step_up(request, return_to(request, *args, **kwargs))

        return wrapper

    return decorator


def _on_the_account(request: HttpRequest):
    return recent_step_up(request.user)


def redirect_to_step_up(request: HttpRequest, page: str, *, keep_form: bool = True) -> HttpResponse:
    """Keep the submitted fields for `page` (unless told not to: a page that does not
    restore them, or whose fields may be secrets), and send the user to verify MFA first."""
    if keep_form and request.method == "POST":
        fields = {k: v for k, v in request.POST.items() if k != "csrfmiddlewaretoken"}
        request.session[SAVED_FORM_KEY] = {"page": page, "fields": fields}
    return redirect(f"{reverse('mfa-verify')}?{urlencode({'next': page})}")


def interrupted_form(request: HttpRequest, page: str) -> bool:
    """Whether a step-up interrupted a form that `page` will offer again."""
    saved = request.session.get(SAVED_FORM_KEY)
    return bool(saved and saved.get("page") == page)


def saved_form(request: HttpRequest) -> dict[str, str]:
    """The fields a step-up interrupted on this page, once."""
    saved = request.session.get(SAVED_FORM_KEY)
    if saved and saved.get("page") == request.path:
        del request.session[SAVED_FORM_KEY]
        return saved["fields"]
    return {}
