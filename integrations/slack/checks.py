"""Settings checks, run by every `manage.py` command."""

from django.conf import settings
from django.core import checks


@checks.register()
def slack_workspaces(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Slack with a token and a secret but no workspace named stays off: say so,
    or the operator sees only that the app does not answer."""
    if not (settings.SLACK_BOT_TOKEN and settings.SLACK_SIGNING_SECRET):
        return []
    if settings.SLACK_TEAM_IDS:
        return []
    return [
        checks.Warning(
            "Slack is off: SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are set, but "
            "SLACK_TEAM_IDS names no workspace to serve",
            hint="set SLACK_TEAM_IDS to the workspace's team id (T...); see the README, Slack",
            id="slack.W001",
        )
    ]
