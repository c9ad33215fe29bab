"""Admin: read-only views of the core. State changes go through the lifecycle;
the only admin action is revocation, which calls it."""

from django.contrib import admin, messages

from audit.admin import ReadOnlyAdmin
from audit.trail import request_info
from broker import lifecycle
from broker.models import AccessProfile, AccessRequest, Grant


@admin.register(AccessProfile)
class AccessProfileAdmin(ReadOnlyAdmin):
    list_display = ["slug", "title", "provider_kind", "enabled", "updated_at"]
    list_filter = ["enabled", "provider_kind"]


@admin.register(AccessRequest)
class AccessRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "requester", "profile", "duration", "status", "created_at"]
    list_filter = ["status", "profile"]
    list_select_related = ["requester", "profile"]


@admin.register(Grant)
class GrantAdmin(ReadOnlyAdmin):
    list_display = ["id", "request", "status", "expires_at", "end_reason"]
    list_filter = ["status"]
    list_select_related = ["request__requester", "request__profile"]
    exclude = ["secret"]
    actions = ["revoke"]

    @admin.action(description="Revoke selected grants now")
    def revoke(self, request, queryset):
        info = request_info(request)
        for grant in queryset:
            try:
                lifecycle.grant_revoke(
                    grant_id=grant.pk, actor=request.user, reason="revoked in admin", info=info
                )
            except lifecycle.LifecycleError as exc:
                self.message_user(request, f"{grant.pk}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"{grant.pk}: revocation requested")
