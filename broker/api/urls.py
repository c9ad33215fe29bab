from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from broker.api import views
from broker.api.errors import not_found

urlpatterns = [
    path("v1/me/", views.MeView.as_view(), name="api-me"),
    path("v1/profiles/", views.ProfileListView.as_view(), name="api-profiles"),
    path("v1/catalog/", views.CatalogStatusView.as_view(), name="api-catalog"),
    path("v1/requests/", views.RequestListView.as_view(), name="api-requests"),
    path("v1/requests/create/", views.RequestCreateView.as_view(), name="api-request-create"),
    path(
        "v1/requests/break-glass/", views.BreakGlassView.as_view(), name="api-request-break-glass"
    ),
    path("v1/requests/<uuid:request_id>/", views.RequestDetailView.as_view(), name="api-request"),
    path(
        "v1/requests/<uuid:request_id>/cancel/",
        views.RequestCancelView.as_view(),
        name="api-request-cancel",
    ),
    path(
        "v1/requests/<uuid:request_id>/approve/",
        views.RequestApproveView.as_view(),
        name="api-request-approve",
    ),
    path(
        "v1/requests/<uuid:request_id>/deny/",
        views.RequestDenyView.as_view(),
        name="api-request-deny",
    ),
    path("v1/grants/", views.GrantListView.as_view(), name="api-grants"),
    path("v1/grants/<uuid:grant_id>/", views.GrantDetailView.as_view(), name="api-grant"),
    path(
        "v1/grants/<uuid:grant_id>/revoke/",
        views.GrantRevokeView.as_view(),
        name="api-grant-revoke",
    ),
    path(
        "v1/grants/<uuid:grant_id>/extend/",
        views.GrantExtendView.as_view(),
        name="api-grant-extend",
    ),
    path(
        "v1/grants/<uuid:grant_id>/reveal/",
        views.GrantRevealView.as_view(),
        name="api-grant-reveal",
    ),
    path("v1/audit/events/", views.AuditEventListView.as_view(), name="api-audit-events"),
    path("v1/audit/export/", views.AuditExportView.as_view(), name="api-audit-export"),
    path("v1/audit/manifest/", views.AuditManifestView.as_view(), name="api-audit-manifest"),
    path("v1/audit/keys/", views.AuditKeysView.as_view(), name="api-audit-keys"),
    path("v1/locks/", views.LockListView.as_view(), name="api-locks"),
    path("v1/locks/targets/", views.LockTargetsView.as_view(), name="api-lock-targets"),
    path("v1/locks/create/", views.LockCreateView.as_view(), name="api-lock-create"),
    path("v1/locks/<uuid:lock_id>/", views.LockDetailView.as_view(), name="api-lock"),
    path("v1/locks/<uuid:lock_id>/lift/", views.LockLiftView.as_view(), name="api-lock-lift"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^[\s\S]*$", not_found),  # any path, newlines included
]
