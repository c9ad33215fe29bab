from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from accounts import scim, views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("mfa/", views.mfa_settings, name="mfa-settings"),
    path("mfa/verify/", views.mfa_verify, name="mfa-verify"),
    path("mfa/enrol/", views.mfa_enrol, name="mfa-enrol"),
    path("mfa/backup-codes/", views.mfa_backup_codes, name="mfa-backup-codes"),
    path("mfa/remove/", views.mfa_remove_view, name="mfa-remove"),
    path("notifications/", views.notifications, name="notifications"),
    path("tokens/", views.api_tokens, name="api-tokens"),
    path("tokens/create/", views.api_token_create, name="api-token-create"),
    path("tokens/<int:token_id>/revoke/", views.api_token_revoke, name="api-token-revoke"),
    # SCIM 2.0 for the identity provider (paths as RFC 7644 names them: no trailing slash).
    path("scim/v2/Users", scim.users, name="scim-users"),
    path("scim/v2/Users/<str:user_id>", scim.user_detail, name="scim-user"),
    path("scim/v2/Groups", scim.groups, name="scim-groups"),
    path("scim/v2/Groups/<str:group_id>", scim.group_detail, name="scim-group"),
    path("scim/v2/ServiceProviderConfig", scim.service_provider_config, name="scim-config"),
    path("scim/v2/ResourceTypes", scim.resource_types, name="scim-resource-types"),
    path("scim/v2/Schemas", scim.schemas, name="scim-schemas"),
    re_path(r"^scim/[\s\S]*$", scim.not_found),  # any other path, newlines included
]
