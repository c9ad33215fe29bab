"""/slack/events refuses what Slack did not send, or sent before: bad signatures,
stale and replayed timestamps, malformed payloads. Never a 500, never a change."""

import json
import re
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import trail
from audit.models import AuditEvent
from broker import lifecycle
from broker.catalog.load import parse_catalog
from broker.lifecycle import catalog_sync
from broker.models import AccessProfile, AccessRequest
from lib.durations import parse_duration
from tests.support.catalogs import POLICY_CATALOG
from tests.support.grants import active_grant
from tests.support.people import WEB, phone_of
from tests.support.slack_requests import (
    SECRET,
    click,
    command,
    deliver_notifications,
    open_home,
    signed_post,
)


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


@pytest.mark.parametrize("timestamp", ["\u00b2", "1\u00b3", "\u0661\u0662"])
def test_a_timestamp_of_digits_python_cannot_read_is_refused_not_a_500(
    client, slack, catalog, timestamp
):
    """A superscript (a header byte such as 0xB2, read as Latin-1) is a digit to
    str.isdigit() but not to int(): anyone could make the endpoint answer 500."""
    body = urlencode({"command": "/access", "user_id": "U_ALICE", "team_id": "T1"})
    response = client.generic(
        "POST", "/slack/events", body, "application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp, HTTP_X_SLACK_SIGNATURE="v0=" + "0" * 64,
    )  # fmt: skip
    assert response.status_code == 401
    assert response.json()["error"] == "invalid or stale signature"


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


# What people type (reasons, tickets, comments, deny and revoke reasons, slash
# command words) with every trick Slack's mrkdwn knows, and a fake status line.
HOSTILE = "*PWN* _it_ ~gone~ `code` :skull: <!channel> <http://evil|here> &amp; & \n" \
          ":white_check_mark: Approved by bob (MFA) 1/1"  # fmt: skip
BROKEN_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def _text_objects(value) -> Iterator[dict]:
    if isinstance(value, dict):
        if value.get("type") in ("mrkdwn", "plain_text") and isinstance(value.get("text"), str):
            yield value
        for inner in value.values():
            yield from _text_objects(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _text_objects(inner)


def assert_typed_text_is_plain(message: dict) -> int:
    """What someone typed is only ever in plain_text objects (emoji off, on one line),
    never in mrkdwn nor in the message's own text; no mrkdwn ends in half an entity.
    How many plain_text objects carry it."""
    objects = list(_text_objects(message))
    mrkdwn = [o["text"] for o in objects if o["type"] == "mrkdwn"]
    for text in [message.get("text") or "", *mrkdwn]:
        assert "PWN" not in text, text
        assert not BROKEN_ENTITY.search(text), text
    typed = [o for o in objects if o["type"] == "plain_text" and "PWN" in o["text"]]
    for plain in typed:
        assert plain["emoji"] is False and "\n" not in plain["text"], plain
        assert 0 < len(plain["text"]) <= 2000
    return len(typed)


def test_what_people_type_is_shown_as_plain_text_everywhere(
    client, slack, settings, submit, people, step_up, catalog
):
    profile = catalog["test-db"]
    profile.spec = {**profile.spec, "slack_channel": "#access-approvals",
                    "slack_dm_approvers": True}  # fmt: skip
    profile.save()
    request = submit(people.alice, reason=HOSTILE, ticket="INC-1")
    deliver_notifications()
    phone_of(people.bob)
    click(client, "U_BOB", "deny", str(request.pk))  # the modal shows the request
    open_home(client, "U_BOB")  # bob's queue shows the reason
    step_up(people.bob)
    lifecycle.access_request_deny(request_id=request.pk, approver=people.bob,
                                  reason=HOSTILE, info=WEB)  # fmt: skip
    deliver_notifications()
    # Each surface did show it: the posts and their updates, the modal, App Home.
    shown = dict.fromkeys(("chat.postMessage", "chat.update", "views.open", "views.publish"), 0)
    for method, params in slack.calls:
        count = assert_typed_text_is_plain(params)
        if method in shown:
            shown[method] += count
    assert all(shown.values()), shown


def test_a_revoke_reason_and_a_break_glass_reason_are_plain_text(
    slack, settings, submit, people, step_up, pg_target
):
    settings.SLACK_SECURITY_CHANNEL = "#security"
    grant = active_grant(people, submit, step_up)
    seen = deliver_notifications()
    slack.clear()
    lifecycle.grant_revoke(grant_id=grant.pk, actor=people.bob, reason=HOSTILE, info=WEB)
    lifecycle.grant_revoke_execute(grant_id=grant.pk)
    catalog_sync(catalog=parse_catalog(POLICY_CATALOG.encode()), info=trail.SYSTEM)
    step_up(people.alice)
    lifecycle.access_request_submit(
        requester=people.alice, profile=AccessProfile.objects.get(slug="crown-jewels"),
        duration=parse_duration("30m"), reason=HOSTILE, info=WEB, break_glass=True,
    )  # fmt: skip
    deliver_notifications(seen)
    shown = sum(assert_typed_text_is_plain(params) for _, params in slack.calls)
    revoked = [p for p in slack.made("chat.postMessage") if "Revoked by bob" in p["text"]]
    alerts = [p for p in slack.made("chat.postMessage") if p["channel"] == "#security"]
    assert revoked and alerts and shown >= 2


def test_slash_command_answers_do_not_echo_typed_text_as_mrkdwn(client, slack, catalog):
    for text in ["*PWN*:skull: 1h", "test-db *PWN*<!here>", "test-db 1h x"]:
        response = command(client, "U_ALICE", text)
        body = response.content.decode()
        message = json.loads(body) if body.startswith("{") else {"text": body}
        assert_typed_text_is_plain(message)


def test_long_typed_text_is_cut_on_a_character_never_in_an_entity(submit, people, catalog):
    from integrations.slack.blocks import home_view, request_message

    request = submit(people.alice, reason="x" + "<&>" * 666)  # 1,999 characters
    for message in (
        request_message(request)[1],
        home_view(people.bob, grants=[], pending=[], awaiting=[request])["blocks"],
    ):
        for text in _text_objects(message):
            if text["type"] == "mrkdwn":
                assert not BROKEN_ENTITY.search(text["text"]), text["text"][-12:]
            assert len(text["text"]) <= 3000


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
