"""The web page where people link their Slack account, or unlink it."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.decorators import redirect_to_step_up
from accounts.selectors import recent_step_up_in_session
from accounts.services import has_mfa
from audit.trail import request_info
from integrations.slack.linking import slack_link_code_create, slack_unlink


@login_required
@require_http_methods(["GET", "POST"])
def slack_link(request: HttpRequest) -> HttpResponse:
    """Link a Slack account with a one-time code, or unlink."""
    code = None
    if request.method == "POST":
        if request.POST.get("action") == "unlink":
            if slack_unlink(user=request.user, info=request_info(request)):
                messages.success(request, "Your Slack account is no longer linked.")
            return redirect("slack-link")
        # A link lets a Slack user act for this account from then on: as for an
        # authenticator or a token, MFA passed in this very session first.
        if not has_mfa(request.user):
            messages.error(request, "Set up an authenticator app before linking Slack.")
            return redirect("mfa-enrol")
        if not recent_step_up_in_session(request):
            return redirect_to_step_up(request, reverse("slack-link"), keep_form=False)
        code = slack_link_code_create(user=request.user)
    context = {
        "slack_enabled": settings.SLACK_ENABLED,
        "identities": request.user.slack_identities.all(),
        "code": code,
    }
    return render(request, "slack/link.html", context)
