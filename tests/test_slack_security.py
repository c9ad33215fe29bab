"""/slack/events refuses what Slack did not send, or sent before: bad signatures,
stale and replayed timestamps, malformed payloads. Never a 500, never a change."""

import json
import time
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.models import AccessRequest, AuditEvent
from tests.slack_requests import SECRET, command, signed_post


def test_a_bad_signature_is_refused(client, slack, catalog):
    body = urlencode({"command": "/access", "text": "test-db 1h x", "user_id": "U_ALICE",
                      "team_id": "T1"})  # fmt: skip
    response = signed_post(client, body, "application/x-www-form-urlencoded", secret="wrong")
    assert response.status_code == 401
    assert not AccessRequest.objects.exists()


def test_unsigned_requests_are_refused(client, slack, catalog):
    response = client.post("/slack/events", {"command": "/access", "user_id": "U_ALICE"})
    assert response.status_code == 401


def test_a_stale_timestamp_is_refused(client, slack, catalog):
    response = command(client, "U_ALICE", "test-db 1h INC-1", timestamp=int(time.time()) - 301)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid or stale signature"
    assert not AccessRequest.objects.exists()


def test_a_replayed_request_is_refused(client, slack, catalog):
    stamp = int(time.time())
    first = command(client, "U_ALICE", "test-db 1h INC-1 first", timestamp=stamp)
    assert "Asked for" in first.content.decode()
    AccessRequest.objects.update(status="cancelled")
    replay = command(client, "U_ALICE", "test-db 1h INC-1 first", timestamp=stamp)
    assert replay.status_code == 401 and replay.json()["error"] == "replayed request"
    assert AccessRequest.objects.count() == 1


def test_a_forged_user_cannot_act_for_someone_else(client, slack, submit, people):
    """The signature covers the body, so changing user.id after signing breaks it;
    a validly signed body can only name the Slack user who really clicked."""
    request = submit(people.alice)
    payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U_CHARLIE"},
               "trigger_id": "t", "channel": {"id": "C1"},
               "actions": [{"action_id": "approve", "value": str(request.pk)}]}  # fmt: skip
    body = urlencode({"payload": json.dumps(payload)})
    stamp = str(int(time.time()))
    from slack_sdk.signature import SignatureVerifier

    signature = SignatureVerifier(SECRET).generate_signature(timestamp=stamp, body=body)
    forged = body.replace("U_CHARLIE", "U_BOB")
    response = client.generic(
        "POST", "/slack/events", forged, "application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=stamp, HTTP_X_SLACK_SIGNATURE=signature,
    )  # fmt: skip
    assert response.status_code == 401
    assert not slack.made("views.open")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("{not json", "application/json"),
        ('{"event": {}}', "application/json"),
        ('{"type": "event_callback", "event": "x"}', "application/json"),
        ("payload=%7Bnot-json", "application/x-www-form-urlencoded"),
        (urlencode({"payload": json.dumps({"type": "block_actions"})}),
         "application/x-www-form-urlencoded"),
        (urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": "U_BOB"},
                                           "actions": []})}),
         "application/x-www-form-urlencoded"),
        (urlencode({"payload": json.dumps({"type": "view_submission", "user": {"id": "U_BOB"},
                                           "view": {"callback_id": "approve_modal"}})}),
         "application/x-www-form-urlencoded"),
        ("text=hello", "application/x-www-form-urlencoded"),
        ("<xml/>", "text/xml"),
    ],
)  # fmt: skip
def test_malformed_payloads_get_a_400_and_change_nothing(
    client, slack, catalog, body, content_type
):
    before = AuditEvent.objects.count()
    response = signed_post(client, body, content_type)
    assert response.status_code == 400
    assert response.json()["error"].startswith("malformed payload")
    assert AuditEvent.objects.count() == before


def test_a_huge_body_is_refused(client, slack, catalog):
    response = signed_post(client, "x=" + "a" * (1 << 20), "application/x-www-form-urlencoded")
    assert response.status_code == 413


def test_without_slack_settings_the_endpoint_says_so(client, db):
    response = command(client, "U_ALICE", "status")
    assert response.status_code == 404
    assert response.json()["error"] == "Slack is not configured on this Airlock"


def test_user_text_is_escaped_in_blocks(client, slack, submit, people):
    from integrations.slack.blocks import request_message

    request = submit(people.alice, reason="<!channel> look <http://evil|here> & now")
    text = json.dumps(request_message(request)[1])
    assert "<!channel>" not in text and "<http://evil" not in text
    assert "&lt;!channel&gt;" in text and "&amp; now" in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=10,
)  # fmt: skip
payload_shapes = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["block_actions", "view_submission", "shortcut", "x"]),
        "user": st.one_of(json_values, st.fixed_dictionaries({"id": st.sampled_from(
            ["U_BOB", "U_ALICE", "U_NOBODY"])})),
        "team": json_values,
        "actions": st.one_of(json_values, st.lists(st.fixed_dictionaries(
            {"action_id": st.sampled_from(["approve", "deny", "relinquish", "zzz"])},
            optional={"value": json_values}), max_size=2)),
        "view": st.one_of(json_values, st.fixed_dictionaries(
            {"type": st.just("modal"),
             "callback_id": st.sampled_from(["approve_modal", "deny_modal", "request_modal"]),
             "state": st.fixed_dictionaries({"values": st.dictionaries(
                 st.sampled_from(["otp", "reason", "profile", "duration", "comment"]),
                 json_values, max_size=3)})},
            optional={"private_metadata": json_values})),
        "trigger_id": json_values,
    },
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=payload_shapes, truncate=st.integers(min_value=0, max_value=3))
def test_fuzzed_interactions_never_500_and_never_change_state(
    client, slack, submit, people, payload, truncate
):
    if not AccessRequest.objects.exists():
        submit(people.alice)
    before = (AuditEvent.objects.count(), list(AccessRequest.objects.values_list("status")))
    body = urlencode({"payload": json.dumps(payload)})
    if truncate:
        body = body[: len(body) * truncate // 4]
    response = signed_post(client, body, "application/x-www-form-urlencoded")
    assert response.status_code < 500, response.content
    after = (AuditEvent.objects.count(), list(AccessRequest.objects.values_list("status")))
    # No code was given, so nothing can be decided: no state change, ever.
    assert after[1] == before[1]
