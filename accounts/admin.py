from django.contrib import admin
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Preferences


@admin.register(Preferences)
class PreferencesAdmin(admin.ModelAdmin):
    """The time zone that decides "off-hours" in a user's risk score."""

    list_display = ["user", "timezone"]
    search_fields = ["user__username"]


# django-otp's own TOTP device admin shows seeds; Airlock keeps them in its
# encrypted Authenticator, which has no admin at all.
if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)
