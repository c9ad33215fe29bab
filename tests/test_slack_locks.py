"""`/access lock @user REASON` in Slack: carol (security role, linked) confirms a
modal naming the Airlock user, with her MFA code; the lock takes alice's access
away; the security channel hears of each step; nobody else may lock."""

import pytest

from audit.models import AuditEvent
from broker import lifecycle
from broker.models import AccessRequest, Grant, Lock
from tests.support.grants import active_grant
from tests.support.people import WEB, current_code, phone_of
from tests.support.slack_requests import command, deliver_notifications, submit_view

pytestmark = pytest.mark.usefixtures("pg_target")


@pytest.fixture
def security_channel(settings):
    settings.SLACK_SECURITY_CHANNEL = "#security"


def test_carol_locks_alice_by_mention_after_mfa(
    client, slack, security_channel, people, submit, step_up
):
    grant = active_grant(people, submit, step_up)
    pending = submit(people.alice, slug="test-db-critical", ticket="INC-5")
    seen = deliver_notifications()
    slack.clear()
    assert "Locking needs MFA" in command(client, "U_CAROL", "lock alice x").content.decode()
    phone_of(people.carol)  # enrolled

    response = command(client, "U_CAROL", "lock <@U_ALICE|alice> laptop stolen at the airport")
    assert response.status_code == 200
    (opened,) = slack.made("views.open")
    view = opened["view"]
    assert view["callback_id"] == "lock_modal" and view["private_metadata"] == str(people.alice.pk)
    assert "alice (alice@example.com)" in view["blocks"][0]["text"]["text"]
    reason = next(b for b in view["blocks"] if b.get("block_id") == "reason")
    assert reason["element"]["initial_value"] == "laptop stolen at the airport"
    assert any(block.get("block_id") == "otp" for block in view["blocks"])
    assert not Lock.objects.exists()  # nothing until confirmed

    code = current_code(phone_of(people.carol))
    values = {"reason": "laptop stolen at the airport", "duration": "4h", "otp": code}
    done = submit_view(client, "U_CAROL", "lock_modal", values, str(people.alice.pk))
    assert done.status_code == 200 and done.content == b""
    lock = Lock.objects.get()
    assert (lock.user, lock.placed_by, lock.ends_at is not None) == (
        people.alice,
        people.carol,
        True,
    )
    assert AuditEvent.objects.get(action="lock.placed").source == "slack"
    assert Grant.objects.get(pk=grant.pk).status == "revoking"
    assert AccessRequest.objects.get(pk=pending.pk).status == "cancelled"

    deliver_notifications(seen)
    posted = [m for m in slack.made("chat.postMessage") if m["channel"] == "#security"]
    assert any("carol locked user alice until" in m["text"] for m in posted)
    # The request's own message is updated in place, wherever the change came from.
    assert slack.made("chat.update")


def test_a_proposal_to_lift_reaches_the_other_members(
    client, slack, security_channel, people, catalog, step_up
):
    step_up(people.carol)
    lock, _ = lifecycle.lock_place(
        actor=people.carol, scope="user", subject="bob", reason="phished", info=WEB
    )
    seen = deliver_notifications()
    slack.clear()
    lifecycle.lock_lift(lock_id=lock.pk, actor=people.carol, reason="reset", info=WEB)
    deliver_notifications(seen)
    texts = {m["channel"]: m["text"] for m in slack.made("chat.postMessage")}
    assert "carol proposes lifting the lock on user bob" in texts["#security"]
    assert "/locks/" in texts["#security"]
    # erin is of the security role but not linked to Slack; carol proposed: no DM to her.
    assert "U_CAROL" not in texts


@pytest.mark.parametrize(
    "who, text, answer",
    [
        ("U_BOB", "lock <@U_ALICE> x", "Only the security role"),
        ("U_CAROL", "lock <@U_NOBODY> x", "No Airlock user by that name"),
        ("U_CAROL", "lock mallory x", "No Airlock user by that name"),
        ("U_CAROL", "lock <@U_ALICE>", "Use `/access lock @user REASON`"),
    ],
)
def test_refusals_open_nothing(client, slack, people, catalog, who, text, answer):
    phone_of(people.carol)
    response = command(client, who, text)
    assert answer in response.content.decode()
    assert not slack.made("views.open") and not Lock.objects.exists()


def test_a_wrong_code_or_duration_locks_nothing(client, slack, people, catalog):
    phone_of(people.carol)
    metadata = str(people.alice.pk)
    wrong = submit_view(client, "U_CAROL", "lock_modal", {"reason": "x", "otp": "000000"}, metadata)
    assert "not valid" in wrong.json()["errors"]["otp"]
    code = current_code(phone_of(people.carol))
    values = {"reason": "x", "duration": "soon", "otp": code}
    bad = submit_view(client, "U_CAROL", "lock_modal", values, metadata)
    assert "not a duration" in bad.json()["errors"]["duration"]
    assert not Lock.objects.exists()


def test_a_plain_username_names_the_airlock_user(client, slack, people, catalog):
    phone_of(people.carol)
    command(client, "U_CAROL", "lock @charlie left the company")
    (opened,) = slack.made("views.open")
    assert opened["view"]["private_metadata"] == str(people.charlie.pk)
