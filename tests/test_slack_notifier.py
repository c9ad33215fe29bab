"""Slack messages stay true: posted where the catalog says, updated in place on
every change wherever it came from, and the requester hears what happened."""

import json

import pytest

from broker import lifecycle
from broker.models import Grant
from integrations.slack.models import SlackMessage
from tests.support.grants import active_grant
from tests.support.people import WEB
from tests.support.slack_requests import deliver_notifications


@pytest.fixture
def channel_profile(settings, catalog):
    """test-db posts to #access-approvals and DMs its approvers."""
    from broker.models import AccessProfile

    profile = AccessProfile.objects.get(slug="test-db")
    profile.spec = {**profile.spec, "slack_channel": "#access-approvals",
                    "slack_dm_approvers": True}  # fmt: skip
    profile.save()
    return profile


def texts(blocks: list) -> str:
    return json.dumps(blocks)


def test_a_new_request_goes_to_the_channel_the_approvers_and_the_requester(
    slack, channel_profile, submit, people
):
    request = submit(people.alice, reason="INC-1 payouts")
    deliver_notifications()
    posted = {p["channel"]: p for p in slack.made("chat.postMessage")}
    assert set(posted) == {"#access-approvals", "U_BOB", "U_CAROL", "U_ALICE"}
    channel = texts(posted["#access-approvals"]["blocks"])
    assert "alice" in channel and "test-db" in channel and "INC-1 payouts" in channel
    assert "first time for test-db" in channel and "Waiting for approval 0/1" in channel
    assert '"action_id": "approve"' in channel and '"action_id": "deny"' in channel
    assert '"action_id": "approve"' not in texts(posted["U_ALICE"]["blocks"])
    kinds = sorted(SlackMessage.objects.filter(request=request).values_list("kind", flat=True))
    assert kinds == ["approver_dm", "approver_dm", "channel", "requester_dm"]
    # Delivered twice (a retried task): nothing is posted twice.
    slack.clear()
    deliver_notifications()
    assert not slack.made("chat.postMessage")


def test_every_change_updates_every_message_in_place(
    slack, channel_profile, submit, people, step_up, pg_target
):
    grant = active_grant(people, submit, step_up)
    deliver_notifications()
    updates = slack.made("chat.update")
    assert {u["channel"] for u in updates} >= {"D_BOB", "D_CAROL", "D_ALICE"}
    last = texts(updates[-1]["blocks"])
    assert "Active until" in last and "Approved by bob (MFA) 1/1" in last
    assert '"action_id": "approve"' not in last  # decided: no more buttons
    dms = [m["text"] for m in slack.made("chat.postMessage") if m["channel"] == "U_ALICE"]
    assert any("was approved" in text for text in dms)
    active = next(text for text in dms if "is active until" in text)
    assert f"/grants/{grant.pk}/" in active
    # Never the secret itself in Slack.
    everything = json.dumps(slack.calls)
    assert "password" not in everything.lower()

    seen = deliver_notifications()
    slack.clear()
    lifecycle.grant_revoke(grant_id=grant.pk, actor=people.alice, reason="", info=WEB)
    lifecycle.grant_revoke_execute(grant_id=grant.pk)
    deliver_notifications(seen)
    assert "Revoked by alice" in texts(slack.made("chat.update")[-1]["blocks"])
    assert any("Revoked by alice" in m["text"] for m in slack.made("chat.postMessage"))


def test_a_denial_from_the_web_updates_slack_and_tells_the_requester(
    slack, channel_profile, submit, people, step_up
):
    request = submit(people.alice)
    seen = deliver_notifications()
    slack.clear()
    step_up(people.bob)
    lifecycle.access_request_deny(request_id=request.pk, approver=people.bob,
                                  reason="use the replica", info=WEB)  # fmt: skip
    deliver_notifications(seen)
    assert all("Denied by bob" in texts(u["blocks"]) and "use the replica" in texts(u["blocks"])
               for u in slack.made("chat.update"))  # fmt: skip
    # Two events (bob's decision, the request closing), each refreshing the four messages.
    assert len(slack.made("chat.update")) == 8
    (dm,) = slack.made("chat.postMessage")
    assert dm["channel"] == "U_ALICE" and "denied by bob" in dm["text"]
    assert "use the replica" in texts(dm["blocks"])


def test_expiry_is_shown_as_expired(slack, channel_profile, submit, people, step_up, pg_target):
    from datetime import timedelta

    from django.utils import timezone

    grant = active_grant(people, submit, step_up)
    seen = deliver_notifications()
    Grant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    lifecycle.grant_expire(grant_id=grant.pk)
    slack.clear()
    deliver_notifications(seen)
    assert ":checkered_flag: Expired" in texts(slack.made("chat.update")[-1]["blocks"])
    assert any("expired" in m["text"] for m in slack.made("chat.postMessage"))


def test_a_rate_limited_call_is_retried_after_retry_after(slack, channel_profile, submit, people):
    from celery.exceptions import Retry

    from audit.models import AuditEvent
    from integrations.slack import tasks

    submit(people.alice)
    slack.fail_next("chat.postMessage", "ratelimited", status=429, retry_after=7)
    event = AuditEvent.objects.get(action="request.submitted")
    with pytest.raises(Retry) as retry:
        tasks.notify.apply(args=[event.pk], throw=True)
    assert retry.value.when == 7
    # The retry posts everything, once.
    tasks.notify.apply(args=[event.pk])
    channels = [p["channel"] for p in slack.made("chat.postMessage") if not p.get("_failed")]
    assert sorted(channels) == sorted(["#access-approvals", "U_BOB", "U_CAROL", "U_ALICE"])


def test_a_permanent_slack_error_is_logged_not_retried(slack, channel_profile, submit, people):
    from audit.models import AuditEvent
    from integrations.slack import tasks

    submit(people.alice)
    slack.fail_next("chat.postMessage", "channel_not_found")
    event = AuditEvent.objects.get(action="request.submitted")
    result = tasks.notify.apply(args=[event.pk])
    assert result.successful()


def test_an_outage_of_slack_never_blocks_a_web_approval(settings, slack, submit, people, step_up):
    settings.SLACK_API_URL = "http://127.0.0.1:9/api/"  # nothing listens there
    request = submit(people.alice)
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.pk, approver=people.bob, info=WEB)
    request.refresh_from_db()
    assert request.status == "approved"


def test_slack_messages_wait_in_a_queue_of_their_own():
    """A backlog of Slack messages must not hold up activations and revocations,
    which stay on the default queue; workers consume both."""
    from airlock.celery import app

    def queue_of(task: str) -> str:
        return app.amqp.router.route({}, task)["queue"].name

    assert queue_of("integrations.slack.tasks.notify") == "slack"
    assert queue_of("integrations.slack.tasks.warn_before_expiry") == "slack"
    assert queue_of("broker.tasks.expire_grant") == "celery"
    assert queue_of("broker.tasks.activate_grant") == "celery"
    assert set(app.amqp.queues) == {"celery", "slack"}
    # With AMQP routing, a key bound to both queues would deliver every message to both.
    assert {queue.routing_key for queue in app.amqp.queues.values()} == {"celery", "slack"}


def test_a_request_withdrawn_by_airlock_says_so_everywhere(
    slack, channel_profile, submit, people, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import Group

    submit(people.alice)
    seen = deliver_notifications()
    slack.clear()
    with django_capture_on_commit_callbacks(execute=True):
        Group.objects.get(name="engineers").user_set.remove(people.alice)
    deliver_notifications(seen)
    updates = [texts(u["blocks"]) for u in slack.made("chat.update")]
    assert updates and all("Withdrawn by Airlock" in update for update in updates)
    assert all("alice may no longer request test-db" in update for update in updates)
    told = [m for m in slack.made("chat.postMessage") if m["channel"] == "U_ALICE"]
    assert "was withdrawn by Airlock" in told[-1]["text"]
    assert "alice may no longer request test-db" in texts(told[-1]["blocks"])
