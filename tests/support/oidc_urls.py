"""Airlock's URLs with single sign-on's, as airlock/urls.py has them when OIDC is on
(it decides at import, so tests that turn OIDC on use this URL conf)."""

from django.urls import include, path

from airlock.urls import urlpatterns as airlock_urlpatterns

urlpatterns = [*airlock_urlpatterns, path("oidc/", include("mozilla_django_oidc.urls"))]
