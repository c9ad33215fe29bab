"""What outlives the session (an authenticator, backup codes, an API token) and
the admin's changes need MFA passed in this very session. A step-up is otherwise
per account: one made in Slack, through the API or in another browser would lend
its minutes to whoever holds this session's cookie, who could then plant their
own authenticator and keep the account for good."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import ApiToken, Authenticator, BackupCode
from accounts.selectors import MFA_SESSION_KEY
from accounts.services import mfa_step_up
from audit import trail
from audit.models import Source
from tests.support.people import add_user, current_code, phone_of, verified

SLACK = trail.RequestInfo(source=Source.SLACK, user_agent="slack:T1/U_BOB")


def stolen_session(client, user) -> None:
    """A session of `user`'s in which MFA was passed an hour ago (its cookie stolen);
    just now, the real `user` passed MFA in Slack."""
    verified(client, user)
    session = client.session
    session[MFA_SESSION_KEY] = (timezone.now() - timedelta(hours=1)).isoformat()
    session.save()
    mfa_step_up(user=user, code=current_code(phone_of(user), 1), info=SLACK)


def refused(response) -> bool:
    return response.status_code == 302 and response.url.startswith("/mfa/verify/")


def test_a_new_authenticator_needs_mfa_in_this_session(client, people):
    stolen_session(client, people.bob)
    old = Authenticator.objects.get(user=people.bob)

    assert refused(client.get("/mfa/enrol/"))  # no new seed shown
    assert list(Authenticator.objects.filter(user=people.bob)) == [old]


@pytest.mark.parametrize(
    ("url", "unchanged"),
    [
        ("/mfa/backup-codes/", lambda user: not BackupCode.objects.filter(user=user).exists()),
        ("/mfa/remove/", lambda user: Authenticator.objects.filter(user=user).exists()),
        ("/tokens/create/", lambda user: not ApiToken.objects.filter(user=user).exists()),
    ],
)
def test_what_outlives_the_session_needs_mfa_in_this_session(client, people, url, unchanged):
    stolen_session(client, people.bob)

    assert refused(client.post(url, {"name": "laptop", "days": "30"}))
    assert unchanged(people.bob)


def test_the_admin_changes_nothing_on_a_step_up_made_elsewhere(client, people, settings):
    settings.AIRLOCK_ADMIN_ENABLED = True
    stolen_session(client, people.admin)

    assert refused(add_user(client))
    assert not get_user_model().objects.filter(username="mallory").exists()


def test_after_mfa_in_this_session_they_work(client, people):
    stolen_session(client, people.bob)
    device = Authenticator.objects.get(user=people.bob)
    assert client.post("/mfa/verify/", {"code": current_code(device, 2)}).status_code == 302

    assert client.post("/mfa/backup-codes/").status_code == 200
    assert BackupCode.objects.filter(user=people.bob).count() == 10


def test_a_slack_link_code_needs_mfa_in_this_session(client, people, slack):
    """A link code ties a Slack user to the account for good: whoever holds a stolen
    session could otherwise link their own Slack user and ask in the victim's name."""
    from integrations.slack.models import SlackLinkCode

    stolen_session(client, people.bob)
    assert refused(client.post("/slack/link/", {"action": "code"}))
    assert not SlackLinkCode.objects.filter(user=people.bob).exists()

    device = Authenticator.objects.get(user=people.bob)
    assert client.post("/mfa/verify/", {"code": current_code(device, 2)}).status_code == 302
    page = client.post("/slack/link/", {"action": "code"}).content.decode()
    assert "/access link " in page and SlackLinkCode.objects.filter(user=people.bob).exists()


def test_without_an_authenticator_there_is_no_link_code(client, people):
    from integrations.slack.models import SlackLinkCode

    client.force_login(people.charlie)
    response = client.post("/slack/link/", {"action": "code"})
    assert response.status_code == 302 and response.url == "/mfa/enrol/"
    assert not SlackLinkCode.objects.filter(user=people.charlie).exists()
