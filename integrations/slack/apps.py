from django.apps import AppConfig


class SlackConfig(AppConfig):
    name = "integrations.slack"
    label = "slack"
    verbose_name = "Slack"

    def ready(self) -> None:
        from broker.model_audit import Watched, watch
        from integrations.slack import checks, signals  # noqa: F401 (connects the notifier, registers the checks)
        from integrations.slack.models import SlackIdentity

        # Who a Slack user is decides what they may do: every change is audited.
        watch(SlackIdentity, Watched("slack_link", names=("user", "team_id", "slack_user_id")))
