"""With Slack off, approvers are told by email (Django's mail; the console under
`make run`), each on their own, unless they turned it off; the request page says
how approvers were asked, and the trail records whom each notifier reached."""

import pytest

from accounts.services import notification_settings_update
from audit.actions import Action
from audit.models import AuditEvent
from broker import lifecycle
from integrations.mail import notifier, signals
from tests.support.people import WEB


@pytest.fixture
def email_on(settings):
    settings.AIRLOCK_EMAIL_ENABLED = True
    settings.SLACK_ENABLED = False
    settings.AIRLOCK_BASE_URL = "https://airlock.example.com"


def submitted_event(access_request) -> AuditEvent:
    return AuditEvent.objects.get(action=Action.REQUEST_SUBMITTED, target_id=str(access_request.pk))


def test_each_approver_gets_their_own_email(
    email_on, people, submit, mailoutbox, django_capture_on_commit_callbacks, client
):
    with django_capture_on_commit_callbacks() as callbacks:
        request = submit(people.alice, reason="INC-1\r\nBcc: mallory@evil.example")
    assert [c for c in callbacks if c.__module__ == signals.__name__]  # queued once committed
    notifier.email_approvers(submitted_event(request).pk)  # what the worker runs

    assert sorted(m.to[0] for m in mailoutbox) == ["bob@example.com", "carol@example.com"]
    message = mailoutbox[0]
    assert len(message.to) == 1 and not message.bcc and not message.cc
    assert message.subject == "[Airlock] alice asks for test-db"
    assert f"https://airlock.example.com/requests/{request.pk}/" in message.body
    assert "Bcc" not in str(message.message()["Bcc"] or "")
    reported = AuditEvent.objects.get(action=Action.REQUEST_APPROVERS_NOTIFIED)
    assert reported.data == {"via": "email", "recipients": ["bob", "carol"]}

    client.force_login(people.alice)
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert "by email (bob, carol)" in page


def test_an_approver_who_turned_email_off_gets_none(email_on, people, submit, mailoutbox):
    notification_settings_update(user=people.carol, email_approvals=False)
    request = submit(people.alice)
    notifier.email_approvers(submitted_event(request).pk)
    assert [m.to for m in mailoutbox] == [["bob@example.com"]]


def test_nobody_reachable_is_said_plainly(email_on, people, submit, mailoutbox, client):
    for approver in (people.bob, people.carol):
        notification_settings_update(user=approver, email_approvals=False)
    request = submit(people.alice)
    notifier.email_approvers(submitted_event(request).pk)
    assert mailoutbox == []
    client.force_login(people.alice)
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert "email reached nobody (no approver with an address and email on)" in page


def test_a_request_decided_meanwhile_sends_nothing(email_on, people, submit, mailoutbox):
    request = submit(people.alice)
    lifecycle.access_request_cancel(request_id=request.pk, actor=people.alice, info=WEB)
    notifier.email_approvers(submitted_event(request).pk)
    assert mailoutbox == []


def test_without_any_notifier_the_page_says_nobody_was_told(settings, people, submit, client):
    settings.AIRLOCK_EMAIL_ENABLED = settings.SLACK_ENABLED = False
    request = submit(people.alice)
    client.force_login(people.alice)
    page = client.get(f"/requests/{request.pk}/").content.decode()
    assert "nobody was notified: no notifier configured" in page


def test_email_off_queues_nothing(settings, people, submit, django_capture_on_commit_callbacks):
    settings.AIRLOCK_EMAIL_ENABLED = False
    with django_capture_on_commit_callbacks() as callbacks:
        submit(people.alice)
    assert not [c for c in callbacks if c.__module__ == signals.__name__]


def test_each_person_sets_their_own_preference(client, people):
    client.force_login(people.bob)
    assert 'name="email_approvals" checked' in client.get("/notifications/").content.decode()
    client.post("/notifications/", {})
    assert 'name="email_approvals" checked' not in client.get("/notifications/").content.decode()
    client.post("/notifications/", {"email_approvals": "on"})
    assert 'name="email_approvals" checked' in client.get("/notifications/").content.decode()


def test_reviewers_are_asked_by_email_when_a_review_starts_and_when_it_is_late(
    email_on, people, catalog, mailoutbox, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    with django_capture_on_commit_callbacks() as callbacks:
        review = lifecycle.access_review_start(
            name="Q4 test-db", profile=catalog["test-db"], takes=timedelta(days=4),
            actor=people.carol, info=WEB,
        )  # fmt: skip
    assert [c for c in callbacks if c.__module__ == signals.__name__]
    started = AuditEvent.objects.get(action=Action.ACCESS_REVIEW_STARTED)
    notifier.email_reviewers(started.pk)  # what the worker runs
    assert sorted(m.to[0] for m in mailoutbox) == ["bob@example.com", "carol@example.com"]
    assert mailoutbox[0].subject == "[Airlock] Access review: Q4 test-db"
    assert f"https://airlock.example.com/access-reviews/{review.pk}/" in mailoutbox[0].body
    assert "People for you to review: 1" in mailoutbox[0].body

    mailoutbox.clear()
    lifecycle.access_reviews_tick(now=review.started_at + timedelta(days=3))  # both nudges
    escalated = AuditEvent.objects.get(action=Action.ACCESS_REVIEW_ESCALATED)
    notifier.email_reviewers(escalated.pk)
    assert "erin@example.com" in [m.to[0] for m in mailoutbox]  # the security role now
    assert "escalated to the security role" in mailoutbox[0].body
