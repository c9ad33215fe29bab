from django.contrib.admin.apps import AdminConfig


class AirlockAdminConfig(AdminConfig):
    """django.contrib.admin with Airlock's site (accounts/admin_site.py) as
    `admin.site`. A module of its own: INSTALLED_APPS imports it before any model."""

    default_site = "accounts.admin_site.AirlockAdminSite"
