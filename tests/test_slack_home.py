"""App Home: my grants with time left and Relinquish, my pending requests, and
what waits for my decision; the expiry warning."""

import json

from broker.models import Grant
from integrations.slack import notifier
from integrations.slack.client import slack_client
from tests.support.grants import active_grant
from tests.support.slack_requests import click, open_home


def test_home_shows_grants_requests_and_the_queue(client, slack, submit, people, step_up,
                                                  pg_target):  # fmt: skip
    grant = active_grant(people, submit, step_up)
    pending = submit(people.alice, slug="vault-token")
    assert open_home(client, "U_ALICE").status_code == 200
    (published,) = slack.made("views.publish")
    home = json.dumps(published["view"])
    assert published["user_id"] == "U_ALICE"
    assert "*test-db*: active" in home and "min left" in home
    assert f'"value": "{grant.pk}"' in home and "Relinquish" in home
    assert "*vault-token* for 1h" in home
    slack.clear()
    open_home(client, "U_BOB")
    bob_home = json.dumps(slack.made("views.publish")[0]["view"])
    assert "Waiting for your decision" in bob_home and f'"value": "{pending.pk}"' in bob_home


def test_relinquish_from_home_revokes_and_refreshes(client, slack, submit, people, step_up,
                                                    pg_target):  # fmt: skip
    grant = active_grant(people, submit, step_up)
    from django.utils import timezone

    from integrations.slack.models import SlackIdentity

    SlackIdentity.objects.create(user=people.charlie, team_id="T1", slack_user_id="U_CHARLIE",
                                 linked_at=timezone.now(), linked_by="code")  # fmt: skip
    click(client, "U_CHARLIE", "relinquish", str(grant.pk), channel=None)
    assert Grant.objects.get(pk=grant.pk).status == "active"  # charlie is nobody here
    # Not even told that the grant exists, as on the web and the API.
    assert slack.made("chat.postMessage")[-1]["text"] == "Not revoked: no such grant."
    click(client, "U_ALICE", "relinquish", str(grant.pk), channel=None)
    assert Grant.objects.get(pk=grant.pk).status == "revoking"
    assert slack.made("views.publish")[-1]["user_id"] == "U_ALICE"


def test_the_requester_is_warned_before_expiry(slack, submit, people, step_up, pg_target):
    grant = active_grant(people, submit, step_up, duration="30m")
    assert notifier.warning_time(grant) is not None
    notifier.warn_before_expiry(slack_client(), grant)
    (dm,) = slack.made("chat.postMessage")
    assert dm["channel"] == "U_ALICE" and "ends in 29 minutes" in dm["text"]
    assert '"action_id": "extend"' in json.dumps(dm["blocks"])  # test-db allows extensions


def test_extend_from_slack(client, slack, submit, people, step_up, pg_target):
    from django.utils import timezone

    from tests.support.slack_requests import submit_view

    grant = active_grant(people, submit, step_up)
    Grant.objects.filter(pk=grant.pk).update(
        activated_at=timezone.now() - grant.duration * 0.6,
        expires_at=timezone.now() + grant.duration * 0.4,
    )
    click(client, "U_CHARLIE", "extend", str(grant.pk), channel=None)
    assert "not yours" in slack.made("chat.postMessage")[-1]["text"]
    click(client, "U_ALICE", "extend", str(grant.pk), channel=None)
    view = slack.made("views.open")[-1]["view"]
    assert view["callback_id"] == "extend_modal" and "at most 2h50m more" in json.dumps(view)
    bad = submit_view(client, "U_ALICE", "extend_modal", {"duration": "5h"}, str(grant.pk))
    assert "at most 2h50m more" in bad.json()["errors"]["duration"]
    ok = submit_view(client, "U_ALICE", "extend_modal",
                     {"duration": "30m", "reason": "migration"}, str(grant.pk))  # fmt: skip
    assert ok.content == b""
    assert grant.extension_requests.get().status == "pending"
