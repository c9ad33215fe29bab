"""Who a Slack user is: a verified email on first contact, or a one-time code
from the web; never a display name. Unknown users can do nothing."""

import pytest

from audit.models import AuditEvent
from broker.models import AccessRequest
from integrations.slack.models import SlackIdentity
from tests.support.people import verified
from tests.support.slack_requests import command


def test_first_contact_links_by_a_verified_email(client, slack, people, catalog):
    slack.add_user("U_DAVE", "dave@EXAMPLE.com")  # domains are case-insensitive
    response = command(client, "U_DAVE", "status")
    assert response.content.decode() == "No pending requests and no active grants."
    link = SlackIdentity.objects.get(slack_user_id="U_DAVE")
    assert link.user == people.dave and link.linked_by == "email"
    assert AuditEvent.objects.filter(action="slack.linked", actor="dave").exists()
    # The data change is recorded as made through Slack, not the web.
    created = AuditEvent.objects.get(action="data.slack_link.created", target_id=str(link.pk))
    assert created.source == "slack"


def test_staff_and_superusers_are_never_linked_by_email(client, slack, people, catalog):
    """As with single sign-on: they link with a code, after MFA on the web."""
    slack.add_user("U_ROOT", "admin@example.com")
    people.erin.is_staff = True
    people.erin.save()
    slack.add_user("U_ERIN", "erin@example.com")
    for slack_user in ("U_ROOT", "U_ERIN"):
        assert "don't know who you are" in command(client, slack_user, "status").content.decode()
    assert not SlackIdentity.objects.filter(slack_user_id__in=["U_ROOT", "U_ERIN"]).exists()


def test_an_unverified_or_ambiguous_email_links_nobody(client, slack, people, catalog):
    slack.add_user("U_X", "dave@example.com", confirmed=False)
    assert "don't know who you are" in command(client, "U_X", "status").content.decode()
    people.charlie.email = "shared@example.com"
    people.charlie.save()
    people.erin.email = "shared@example.com"
    people.erin.save()
    slack.add_user("U_Y", "shared@example.com")
    assert "don't know who you are" in command(client, "U_Y", "test-db 1h x").content.decode()
    assert not SlackIdentity.objects.filter(slack_user_id__in=["U_X", "U_Y"]).exists()
    assert not AccessRequest.objects.exists()


@pytest.mark.parametrize(
    "email",
    [
        "DAVE@example.com",  # another mailbox, as far as RFC 5321 is concerned
        "charl\u0131e@example.com",  # a dotless i: SQL's UPPER() makes it charlie's
        " dave@example.com\n",
        "dave@example.com.evil.test",
    ],
)
def test_email_matching_is_exact(client, slack, people, catalog, email):
    slack.add_user("U_X", email)
    assert "don't know who you are" in command(client, "U_X", "status").content.decode()
    assert not SlackIdentity.objects.filter(slack_user_id="U_X").exists()


def test_an_account_already_linked_gets_another_slack_identity_only_with_a_code(
    client, slack, people, catalog
):
    """bob is linked as U_BOB; a second Slack user with bob's verified email (another
    workspace of his, or someone who made Slack confirm bob's address) is not linked
    by email. bob can link it himself with a code from the web, and that is audited."""
    slack.add_user("U_BOB_2", "bob@example.com")
    assert "don't know who you are" in command(client, "U_BOB_2", "status").content.decode()
    assert not SlackIdentity.objects.filter(slack_user_id="U_BOB_2").exists()
    verified(client, people.bob)  # a link code needs MFA in the session
    code = client.post("/slack/link/", {"action": "code"}).context["code"]
    client.logout()
    answer = command(client, "U_BOB_2", f"link {code}").content.decode()
    assert answer == "Linked: in Airlock you are bob."
    link = SlackIdentity.objects.get(slack_user_id="U_BOB_2")
    assert link.user == people.bob and link.linked_by == "code"
    linked = AuditEvent.objects.get(action="slack.linked", data__slack_user_id="U_BOB_2")
    assert linked.actor == "bob" and linked.data["by"] == "code"


def test_link_with_a_code_from_the_web(client, slack, people, catalog):
    verified(client, people.charlie)
    page = client.post("/slack/link/", {"action": "code"})
    code = page.context["code"]
    assert f"/access link {code}" in page.content.decode()
    client.logout()
    answer = command(client, "U_CHARLIE_SLACK", f"link {code}").content.decode()
    assert answer == "Linked: in Airlock you are charlie."
    assert SlackIdentity.objects.get(slack_user_id="U_CHARLIE_SLACK").user == people.charlie
    # A code works once.
    again = command(client, "U_OTHER", f"link {code}").content.decode()
    assert "not valid" in again


def test_a_code_cannot_move_a_linked_slack_account(client, slack, people, catalog):
    verified(client, people.charlie)
    code = client.post("/slack/link/", {"action": "code"}).context["code"]
    answer = command(client, "U_BOB", f"link {code}").content.decode()
    assert answer == "This Slack account is already linked to bob."
    assert SlackIdentity.objects.get(slack_user_id="U_BOB").user == people.bob


def test_unlink_on_the_web(client, slack, people):
    client.force_login(people.alice)
    client.post("/slack/link/", {"action": "unlink"})
    assert not SlackIdentity.objects.filter(user=people.alice).exists()
    assert AuditEvent.objects.filter(action="slack.unlinked", actor="alice").exists()


def test_without_slack_the_pages_say_so(client, people):
    client.force_login(people.alice)
    assert "Slack is not configured" in client.get("/slack/link/").content.decode()
    assert "Slack is not configured" in client.get("/").content.decode()
