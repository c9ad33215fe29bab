from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "integrations.mail"
    label = "mail"
    verbose_name = "Email"

    def ready(self) -> None:
        from integrations.mail import signals  # noqa: F401 (connects the notifier)
