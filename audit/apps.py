from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The tamper-evident audit trail: events, the chain, exports, verification."""

    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"
