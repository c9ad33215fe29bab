"""With a real Celery worker: a request made on the web reaches Slack, and a web
approval updates the Slack messages and tells the requester, through the notifier task."""

import json

import pytest

from broker.models import AccessProfile
from tests.support.pg_target import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_web_approval_updates_slack(client, slack, catalog, celery_worker, pg_target, people,
                                      step_up):  # fmt: skip
    profile = AccessProfile.objects.get(slug="test-db")
    profile.spec = {**profile.spec, "slack_channel": "#access-approvals"}
    profile.save()
    client.force_login(people.alice)
    response = client.post("/requests/new/", {
        "profile": "test-db", "duration": "10m", "reason": "INC-3", "ticket": "",
    })  # fmt: skip
    assert response.status_code == 302
    assert wait_until(lambda: len(slack.made("chat.postMessage")) >= 2, 20)
    channel_post = next(p for p in slack.made("chat.postMessage")
                        if p["channel"] == "#access-approvals")  # fmt: skip
    assert "Waiting for approval 0/1" in json.dumps(channel_post["blocks"])

    client.force_login(people.bob)
    step_up(people.bob)
    request_path = response["Location"]
    client.post(f"{request_path}decide/", {"decision": "approve"})

    def active_everywhere() -> bool:
        updates = [u for u in slack.made("chat.update") if u["channel"].startswith("C")]
        return bool(updates) and "Active until" in json.dumps(updates[-1]["blocks"])

    def alice_told() -> bool:
        dms = [m["text"] for m in slack.made("chat.postMessage") if m["channel"] == "U_ALICE"]
        return any("is active until" in text for text in dms)

    assert wait_until(active_everywhere, 30)
    assert wait_until(alice_told, 10)
