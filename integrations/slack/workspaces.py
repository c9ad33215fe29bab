"""Which Slack workspaces Airlock serves: those named in SLACK_TEAM_IDS (and, on
Enterprise Grid, the orgs in SLACK_ENTERPRISE_IDS). Everything else is refused.

A signed request proves that Slack sent it, not that it comes from our workspace:
in a Slack Connect channel shared with a partner, the partner's users click our
buttons too. Their payload names the channel's workspace (ours) in `team` and
their own in `user.team_id`, so both are checked."""

from django.conf import settings


def serves(slack_id: object) -> bool:
    """Whether this team id (T...) or Enterprise Grid org id (E...) is one Airlock
    serves. On Grid, Slack gives an org member's team as the org's id."""
    return isinstance(slack_id, str) and slack_id in (
        *settings.SLACK_TEAM_IDS,
        *settings.SLACK_ENTERPRISE_IDS,
    )


def _field(value: object, key: str) -> object:
    return value.get(key) if isinstance(value, dict) else None


def workspace_problem(body: dict) -> str | None:
    """Why a (correctly signed, well-formed) request is not one for this Airlock.

    The workspace is a command's or an event's `team_id`, an interaction's `team.id`;
    the acting user's own team is an interaction's `user.team_id` (an event's
    `event.user_team`); the org is `enterprise_id`, `enterprise.id` or
    `team.enterprise_id`, absent outside Enterprise Grid. Requests with no workspace
    (an org-wide install) are refused too: Airlock is installed per workspace."""
    if body.get("type") == "url_verification":
        return None  # Slack's check of the URL at set-up: no workspace, no change
    workspace = body.get("team_id") or _field(body.get("team"), "id")
    if workspace not in settings.SLACK_TEAM_IDS:
        return "this Airlock does not serve that Slack workspace"
    user_team = _field(body.get("user"), "team_id") or _field(body.get("event"), "user_team")
    if user_team and not serves(user_team):
        return "this Airlock does not serve the user's Slack workspace"
    enterprise = body.get("enterprise")
    orgs = [
        body.get("enterprise_id"),
        enterprise if isinstance(enterprise, str) else _field(enterprise, "id"),
        _field(body.get("team"), "enterprise_id"),
    ]
    if any(org and org not in settings.SLACK_ENTERPRISE_IDS for org in orgs):
        return "this Airlock does not serve that Slack organisation"
    return None
