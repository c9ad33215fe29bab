"""The trail in the admin: read only, like everything the admin shows of records."""

from django.contrib import admin

from audit.models import AuditEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "created_at", "actor", "action", "target_type", "target_id", "source"]
    list_filter = ["action", "source"]
    search_fields = ["actor", "target_id", "action"]
