"""Asking for access from Slack: /access opens the form, or submits in one line."""

from audit.models import AuditEvent
from broker.models import AccessRequest
from tests.support.slack_requests import command, submit_view


def test_access_opens_the_form_with_only_my_profiles(client, slack, catalog):
    response = command(client, "U_ALICE")
    assert response.status_code == 200
    (opened,) = slack.made("views.open")
    assert opened["trigger_id"] == "trigger-1"
    view = opened["view"]
    assert view["callback_id"] == "request_modal"
    options = view["blocks"][0]["element"]["options"]
    assert {o["value"] for o in options} == {
        "test-db", "test-db-critical", "broken-db", "vault-token", "vault-db", "vault-ssh",
        "aws-reader", "other-db",
    }  # fmt: skip
    assert "up to 2h" in next(o for o in options if o["value"] == "test-db")["description"]["text"]


def test_bob_may_request_nothing_and_is_told(client, slack, catalog):
    response = command(client, "U_BOB")
    assert response.content.decode() == "There is no profile you may request."
    assert not slack.made("views.open")


def test_the_form_submits_a_request(client, slack, catalog):
    response = submit_view(
        client, "U_ALICE", "request_modal",
        {"profile": "test-db", "duration": "45m", "reason": "INC-5 payouts", "ticket": "INC-5"},
    )  # fmt: skip
    assert response.status_code == 200 and response.content == b""
    request = AccessRequest.objects.get()
    assert (request.requester.username, request.profile.slug) == ("alice", "test-db")
    assert request.duration.total_seconds() == 45 * 60 and request.ticket == "INC-5"
    event = AuditEvent.objects.get(action="request.submitted")
    assert event.source == "slack" and event.user_agent == "slack:T1/U_ALICE"


def test_form_errors_come_back_on_their_fields_and_change_nothing(client, slack, catalog):
    response = submit_view(
        client, "U_ALICE", "request_modal",
        {"profile": "test-db", "duration": "5h", "reason": "x", "ticket": "nope"},
    )  # fmt: skip
    body = response.json()
    assert body["response_action"] == "errors"
    assert "at most 2h" in body["errors"]["duration"]
    response = submit_view(
        client, "U_ALICE", "request_modal",
        {"profile": "test-db", "duration": "1h", "reason": "x", "ticket": "nope"},
    )  # fmt: skip
    assert "must match" in response.json()["errors"]["ticket"]
    response = submit_view(client, "U_ALICE", "request_modal", {"duration": "soon"})
    assert response.json()["errors"] == {"profile": "Choose a profile."}
    assert not AccessRequest.objects.exists()


def test_one_line_request_submits_at_once_and_finds_the_ticket(client, slack, catalog):
    response = command(client, "U_ALICE", "test-db-critical 30m fixing INC-123 today")
    assert "Asked for *test-db-critical* for 30m" in response.content.decode()
    request = AccessRequest.objects.get()
    assert request.ticket == "INC-123" and request.reason == "fixing INC-123 today"


def test_one_line_request_with_something_missing_says_what(client, slack, catalog):
    assert "How long?" in command(client, "U_ALICE", "test-db").content.decode()
    assert "not a duration" in command(client, "U_ALICE", "test-db soon x").content.decode()
    text = command(client, "U_ALICE", "test-db-critical 30m no ticket here").content.decode()
    assert "ticket: a ticket reference is required" in text
    text = command(client, "U_ALICE", "prod-everything 1h x").content.decode()
    assert "no such profile you may request" in text and "prod-everything" in text
    text = command(client, "U_CHARLIE", "test-db 1h x").content.decode()
    assert "don't know who you are" in text
    assert not AccessRequest.objects.exists()


def test_status_and_revoke(client, slack, submit, people):
    request = submit(people.alice)
    text = command(client, "U_ALICE", "status").content.decode()
    assert f"pending: *test-db* for 1h ({request.pk})" in text
    text = command(client, "U_ALICE", "revoke 00000000-0000-4000-8000-000000000000").content
    assert b"Not revoked: no such grant" in text
    assert b"/access PROFILE" in command(client, "U_ALICE", "help").content
