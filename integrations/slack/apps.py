from django.apps import AppConfig


class SlackConfig(AppConfig):
    name = "integrations.slack"
    label = "slack"
    verbose_name = "Slack"

    def ready(self) -> None:
        from integrations.slack import checks, signals  # noqa: F401 (connects the notifier, registers the checks)
