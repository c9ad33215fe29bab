from django.apps import AppConfig


class BrokerConfig(AppConfig):
    name = "broker"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from broker import model_audit, signals, task_timing  # noqa: F401 (connects the receivers)

        model_audit.connect()
        task_timing.connect()
