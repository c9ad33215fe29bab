"""Airlock serves the Slack workspaces it is configured for (SLACK_TEAM_IDS, and on
Enterprise Grid the orgs in SLACK_ENTERPRISE_IDS) and nobody else: a request from
another workspace, or by a Slack Connect user from a partner's workspace clicking
in a shared channel, is refused and changes nothing."""

import json
import os
import subprocess
import sys

from django.core.management import call_command

from audit.models import AuditEvent
from broker.models import AccessRequest
from integrations.slack.models import SlackIdentity
from tests.support.people import phone_of
from tests.support.slack_requests import click, command, open_home, signed_post


def _changes():
    return AuditEvent.objects.count(), SlackIdentity.objects.count(), AccessRequest.objects.count()


def test_a_command_from_another_workspace_is_refused(client, slack, people, catalog):
    # Slack vouches for the email, but in a workspace this Airlock does not serve.
    slack.add_user("U_PARTNER", "dave@example.com", team="T_PARTNER")
    before = _changes()
    response = command(client, "U_PARTNER", "status", team_id="T_PARTNER")
    assert response.status_code == 403
    assert response.json()["error"] == "this Airlock does not serve that Slack workspace"
    assert _changes() == before
    assert not slack.made("users.info")


def test_a_slack_connect_user_clicking_in_a_shared_channel_is_refused(
    client, slack, submit, people
):
    """The channel is ours (team T1), the clicking user is a partner's: their email
    matches bob's, but they are never linked to bob and cannot open his approval."""
    request = submit(people.alice)
    slack.add_user("U_PARTNER", "bob@example.com", team="T_PARTNER")
    before = _changes()
    response = click(client, "U_PARTNER", "approve", str(request.pk), user_team="T_PARTNER")
    assert response.status_code == 403
    assert response.json()["error"] == "this Airlock does not serve the user's Slack workspace"
    assert _changes() == before
    assert not slack.made("views.open")


def test_a_user_whom_slack_places_in_another_workspace_is_not_linked(client, slack, people):
    """App Home events carry no user team: users.info tells it on first contact."""
    slack.add_user("U_PARTNER", "dave@example.com", team="T_PARTNER")
    response = open_home(client, "U_PARTNER")
    assert response.status_code == 200
    assert not SlackIdentity.objects.filter(slack_user_id="U_PARTNER").exists()
    home = slack.made("views.publish")[-1]["view"]
    assert "don't know who you are" in json.dumps(home)


def test_an_enterprise_grid_org_must_be_configured(client, slack, settings, submit, people):
    foreign_org = command(client, "U_ALICE", "status", enterprise_id="E_OTHER")
    assert foreign_org.status_code == 403
    assert foreign_org.json()["error"] == "this Airlock does not serve that Slack organisation"
    settings.SLACK_ENTERPRISE_IDS = ["E1"]
    assert command(client, "U_ALICE", "status", enterprise_id="E1").status_code == 200
    # On Grid, user.team_id is the org's id (E...), the payload's team the workspace's.
    request = submit(people.alice)
    phone_of(people.bob)
    foreign_user = click(client, "U_BOB", "approve", str(request.pk), user_team="E_OTHER")
    assert foreign_user.status_code == 403
    assert not slack.made("views.open")
    assert click(client, "U_BOB", "approve", str(request.pk), user_team="E1").status_code == 200
    assert len(slack.made("views.open")) == 1


def test_without_a_team_nothing_is_served(client, slack, catalog):
    body = json.dumps({"type": "event_callback", "event": {"type": "app_home_opened",
                                                           "user": "U_ALICE"}})  # fmt: skip
    response = signed_post(client, body, "application/json")
    assert response.status_code == 403
    assert not slack.made("views.publish")


def test_with_no_workspace_configured_every_request_is_refused(client, slack, settings, catalog):
    settings.SLACK_TEAM_IDS = []
    response = command(client, "U_ALICE", "test-db 1h INC-1")
    assert response.status_code == 403
    assert not AccessRequest.objects.exists()


def _slack_enabled(**env: str) -> str:
    """SLACK_ENABLED and SLACK_TEAM_IDS as a fresh process reads them from the environment."""
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'airlock.settings'; "
        "from django.conf import settings; "
        "print(settings.SLACK_ENABLED, settings.SLACK_TEAM_IDS)"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    result = subprocess.run(
        [sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    return result.stdout.strip()


def test_slack_stays_off_until_its_workspaces_are_named():
    secrets = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    assert _slack_enabled(**secrets) == "False []"
    assert _slack_enabled(**secrets, SLACK_TEAM_IDS=" T1, T2 ,") == "True ['T1', 'T2']"


def test_the_settings_check_says_why_slack_is_off(settings, capsys):
    settings.SLACK_BOT_TOKEN, settings.SLACK_SIGNING_SECRET = "xoxb-1", "s"
    settings.SLACK_TEAM_IDS = []
    call_command("check")
    assert "slack.W001" in capsys.readouterr().err
