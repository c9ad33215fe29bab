"""Every app brings its own URLs; the project only puts them together."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("broker.web.urls")),
    path("", include("accounts.urls")),
    path("", include("approvals.urls")),
    path("", include("integrations.slack.urls")),
    path("api/", include("broker.api.urls")),
    path("admin/", admin.site.urls),
]

if settings.OIDC_ENABLED:
    urlpatterns.append(path("oidc/", include("mozilla_django_oidc.urls")))
