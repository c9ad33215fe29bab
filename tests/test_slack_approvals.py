"""Approve and deny from Slack: only eligible approvers, always after MFA."""

import pytest

from accounts.models import Authenticator, StepUp
from audit.models import AuditEvent
from broker.models import AccessRequest, Approval
from tests.support.people import current_code, phone_of
from tests.support.slack_requests import click, submit_view


@pytest.fixture
def pending(slack, submit, people):
    return submit(people.alice)


def test_approve_opens_the_mfa_modal_then_a_real_code_approves(client, slack, pending, people):
    device = phone_of(people.bob)
    assert click(client, "U_BOB", "approve", str(pending.pk)).status_code == 200
    (opened,) = slack.made("views.open")
    view = opened["view"]
    assert view["callback_id"] == "approve_modal" and view["private_metadata"] == str(pending.pk)
    assert any(block.get("block_id") == "otp" for block in view["blocks"])
    response = submit_view(
        client, "U_BOB", "approve_modal", {"otp": current_code(device)}, str(pending.pk)
    )
    assert response.status_code == 200 and response.content == b""
    pending.refresh_from_db()
    assert pending.status == AccessRequest.Status.APPROVED
    decision = Approval.objects.get()
    assert decision.source == "slack" and decision.mfa_method == "totp"
    events = AuditEvent.objects.filter(source="slack")
    assert {"mfa.verified", "request.decision.approve", "request.approved"} <= set(
        events.values_list("action", flat=True)
    )
    assert AuditEvent.objects.get(action="request.decision.approve").data["mfa_method"] == "totp"


def test_a_wrong_code_changes_nothing_and_says_so(client, slack, pending, people):
    phone_of(people.bob)
    response = submit_view(client, "U_BOB", "approve_modal", {"otp": "000000"}, str(pending.pk))
    body = response.json()
    assert body["response_action"] == "errors"
    assert "not valid" in body["errors"]["otp"]
    assert AccessRequest.objects.get().status == "pending" and not Approval.objects.exists()


def test_a_reused_code_is_refused(client, slack, submit, people, pending):
    device = phone_of(people.bob)
    code = current_code(device)
    submit_view(client, "U_BOB", "approve_modal", {"otp": code}, str(pending.pk))
    second = submit(people.alice, slug="vault-token")
    StepUp.objects.all().delete()  # no recent step-up to lean on
    response = submit_view(client, "U_BOB", "approve_modal", {"otp": code}, str(second.pk))
    assert "not valid" in response.json()["errors"]["otp"]
    assert AccessRequest.objects.get(pk=second.pk).status == "pending"


def test_a_recent_step_up_is_reused_with_a_confirmation(client, slack, pending, people, step_up):
    step_up(people.bob)
    click(client, "U_BOB", "approve", str(pending.pk))
    view = slack.made("views.open")[0]["view"]
    assert not any(block.get("block_id") == "otp" for block in view["blocks"])
    response = submit_view(client, "U_BOB", "approve_modal", {"comment": "ok"}, str(pending.pk))
    assert response.content == b""
    assert AccessRequest.objects.get().status == "approved"
    assert Approval.objects.get().comment == "ok"


def test_without_a_recent_step_up_an_empty_code_is_refused(client, slack, pending, people):
    phone_of(people.bob)
    response = submit_view(client, "U_BOB", "approve_modal", {}, str(pending.pk))
    assert response.json()["response_action"] == "errors"
    assert AccessRequest.objects.get().status == "pending"


def test_an_approver_without_mfa_is_sent_to_enrol(client, slack, pending, people):
    Authenticator.objects.filter(user=people.bob).delete()
    click(client, "U_BOB", "approve", str(pending.pk))
    assert not slack.made("views.open")
    (told,) = slack.made("chat.postEphemeral")
    assert told["user"] == "U_BOB" and "/mfa/enrol/" in told["text"]
    assert AccessRequest.objects.get().status == "pending"


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("U_ALICE", "You cannot decide your own request."),
        ("U_NOBODY", "don't know who you are"),  # unlinked, unknown to Slack's users.info
    ],
)
def test_clicks_that_do_not_count(client, slack, pending, user, message):
    click(client, user, "approve", str(pending.pk))
    assert not slack.made("views.open")
    assert message in slack.made("chat.postEphemeral")[0]["text"]


def test_an_approver_of_another_profile_is_not_an_approver_here(client, slack, pending, people):
    from django.utils import timezone

    from integrations.slack.models import SlackIdentity

    SlackIdentity.objects.create(user=people.erin, team_id="T1", slack_user_id="U_ERIN",
                                 linked_at=timezone.now(), linked_by="code")  # fmt: skip
    click(client, "U_ERIN", "approve", str(pending.pk))
    assert "not an approver for test-db" in slack.made("chat.postEphemeral")[0]["text"]


def test_self_approval_through_the_modal_is_refused(client, slack, pending, people, step_up):
    step_up(people.alice)
    response = submit_view(client, "U_ALICE", "approve_modal", {"comment": ""}, str(pending.pk))
    assert "your own request" in response.json()["errors"]["comment"]
    assert AccessRequest.objects.get().status == "pending"


def test_a_decided_request_gets_a_clear_answer(client, slack, pending, people, step_up):
    step_up(people.bob)
    submit_view(client, "U_BOB", "approve_modal", {}, str(pending.pk))
    click(client, "U_CAROL", "approve", str(pending.pk))
    assert "already approved" in slack.made("chat.postEphemeral")[0]["text"]
    step_up(people.carol)
    late = submit_view(client, "U_CAROL", "deny_modal", {"reason": "no"}, str(pending.pk))
    assert "already approved" in late.json()["errors"]["reason"]
    assert Approval.objects.count() == 1


def test_double_click_approves_once(client, slack, pending, people, step_up):
    step_up(people.bob)
    first = submit_view(client, "U_BOB", "approve_modal", {"comment": "ok"}, str(pending.pk))
    # A second click is a new request from Slack (its own timestamp), not a replay.
    second = submit_view(client, "U_BOB", "approve_modal", {"comment": "ok!"}, str(pending.pk))
    assert first.content == b"" and second.json()["response_action"] == "errors"
    assert Approval.objects.count() == 1


def test_approving_after_the_request_expired_is_refused(client, slack, pending, people, step_up):
    from datetime import timedelta

    from django.utils import timezone

    AccessRequest.objects.update(pending_until=timezone.now() - timedelta(seconds=1))
    step_up(people.bob)
    response = submit_view(client, "U_BOB", "approve_modal", {"comment": ""}, str(pending.pk))
    assert "expired" in response.json()["errors"]["comment"]


def test_deny_asks_for_a_reason_and_mfa(client, slack, pending, people):
    device = phone_of(people.bob)
    click(client, "U_BOB", "deny", str(pending.pk))
    view = slack.made("views.open")[0]["view"]
    assert {b.get("block_id") for b in view["blocks"]} >= {"reason", "otp"}
    response = submit_view(
        client, "U_BOB", "deny_modal",
        {"reason": "use the replica", "otp": current_code(device)}, str(pending.pk),
    )  # fmt: skip
    assert response.content == b""
    pending.refresh_from_db()
    assert pending.status == "denied" and pending.decision_reason == "use the replica"
    assert AuditEvent.objects.get(action="request.denied").source == "slack"


def test_unknown_or_malformed_request_ids(client, slack, people, step_up, catalog):
    step_up(people.bob)
    for value in ("00000000-0000-4000-8000-000000000000", "not-a-uuid", ""):
        click(client, "U_BOB", "approve", value)
    assert [m["text"] for m in slack.made("chat.postEphemeral")] == [
        "That request does not exist."
    ] * 3
    response = submit_view(client, "U_BOB", "approve_modal", {"comment": ""}, "not-a-uuid")
    assert "no such request" in response.json()["errors"]["comment"]
