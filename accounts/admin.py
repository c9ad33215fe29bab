from django.contrib import admin

from accounts.models import Preferences


@admin.register(Preferences)
class PreferencesAdmin(admin.ModelAdmin):
    """The time zone that decides "off-hours" in a user's risk score."""

    list_display = ["user", "timezone"]
    search_fields = ["user__username"]
