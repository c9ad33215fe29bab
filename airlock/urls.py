from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import views as account_views
from approvals import views as approval_views
from broker import audit_views, views
from integrations.slack.views import slack_events

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", account_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("requests/new/", views.request_new, name="request-new"),
    path("requests/<uuid:request_id>/", views.request_detail, name="request-detail"),
    path("requests/<uuid:request_id>/decide/", views.request_decide, name="request-decide"),
    path("requests/<uuid:request_id>/cancel/", views.request_cancel, name="request-cancel"),
    path("grants/<uuid:grant_id>/", views.grant_detail, name="grant-detail"),
    path("grants/<uuid:grant_id>/reveal/", views.grant_reveal, name="grant-reveal"),
    path("grants/<uuid:grant_id>/revoke/", views.grant_revoke, name="grant-revoke"),
    path("grants/<uuid:grant_id>/extend/", views.grant_extend, name="grant-extend"),
    path("approvals/", approval_views.queue, name="approval-queue"),
    path("reviews/", approval_views.reviews, name="reviews"),
    path("reviews/<uuid:request_id>/close/", approval_views.review_close, name="review-close"),
    path("audit/", audit_views.audit_log, name="audit-log"),
    path("audit/verify/", audit_views.audit_verify, name="audit-verify"),
    path("audit/export/", audit_views.audit_export, name="audit-export"),
    path("ops/", audit_views.ops, name="ops"),
    path(
        "ops/grants/<uuid:grant_id>/retry/",
        audit_views.ops_retry_revocation,
        name="ops-retry",
    ),
    path("mfa/", account_views.mfa_settings, name="mfa-settings"),
    path("mfa/verify/", account_views.mfa_verify, name="mfa-verify"),
    path("mfa/enrol/", account_views.mfa_enrol, name="mfa-enrol"),
    path("mfa/backup-codes/", account_views.mfa_backup_codes, name="mfa-backup-codes"),
    path("mfa/remove/", account_views.mfa_remove_view, name="mfa-remove"),
    path("api/", include("broker.api.urls")),
    path("slack/events", slack_events, name="slack-events"),
    path("slack/link/", account_views.slack_link, name="slack-link"),
    path("tokens/", account_views.api_tokens, name="api-tokens"),
    path("tokens/create/", account_views.api_token_create, name="api-token-create"),
    path("tokens/<int:token_id>/revoke/", account_views.api_token_revoke, name="api-token-revoke"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
]

if settings.OIDC_ENABLED:
    urlpatterns.append(path("oidc/", include("mozilla_django_oidc.urls")))
