"""The Django admin, behind the same doors as the rest of Airlock.

Off unless AIRLOCK_ADMIN_ENABLED: the admin can change who may do what (users,
groups), so it must not be a way round Airlock's sign-in and MFA. When on, it
has no password form of its own (sign-in is Airlock's, throttled and audited),
staff must have passed MFA in this session to look, and every change needs a
fresh step-up in this session (not one made in Slack or another browser).
Every change it makes is in the audit chain (broker/model_audit.py).
"""

from functools import update_wrapper

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts.decorators import redirect_to_step_up
from accounts.selectors import MFA_SESSION_KEY, recent_step_up_in_session
from accounts.services import has_mfa

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class AirlockAdminSite(admin.AdminSite):
    site_header = "Airlock administration"
    site_title = "Airlock admin"

    def admin_view(self, view, cacheable=False):
        checked = super().admin_view(view, cacheable)

        def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not settings.AIRLOCK_ADMIN_ENABLED:
                raise Http404
            if self.has_permission(request):
                # What was posted is not kept for after: the admin does not restore
                # forms, and sessions are stored in clear, where no typed password may be.
                page = request.get_full_path()
                if not has_mfa(request.user):
                    return redirect("mfa-enrol")
                if not request.session.get(MFA_SESSION_KEY):
                    return redirect_to_step_up(request, page, keep_form=False)
                if request.method not in SAFE_METHODS and not recent_step_up_in_session(request):
                    return redirect_to_step_up(request, page, keep_form=False)
            return checked(request, *args, **kwargs)

        return update_wrapper(guarded, view)

    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        """No password form here: Airlock's sign-in, then back."""
        if not settings.AIRLOCK_ADMIN_ENABLED:
            raise Http404
        if request.user.is_authenticated:
            raise PermissionDenied("the admin is for staff")
        return redirect_to_login(request.GET.get("next", "/admin/"))
