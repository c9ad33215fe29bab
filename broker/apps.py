from django.apps import AppConfig


class BrokerConfig(AppConfig):
    name = "broker"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from broker import checks, model_audit, signals  # noqa: F401 (registers the checks and receivers)

        model_audit.connect()
