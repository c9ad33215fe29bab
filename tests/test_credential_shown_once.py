"""The second reveal of a credential says when it was shown, in words, and what to do:
ask for a new grant, with the link to request the profile again (web and API)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from broker.models import AccessRequest, Grant
from tests.support.people import current_code, phone_of

SHOWN_AT = datetime(2026, 12, 1, 14, 5, 9, tzinfo=UTC)


@pytest.fixture
def shown_grant(people, submit) -> Grant:
    request = submit(people.alice)
    AccessRequest.objects.filter(pk=request.pk).update(status=AccessRequest.Status.APPROVED)
    now = timezone.now()
    return Grant.objects.create(
        request=request, status=Grant.Status.ACTIVE, duration=request.duration,
        created_at=now, activated_at=now, expires_at=now + timedelta(hours=1),
        secret=None, revealed_at=SHOWN_AT,
    )  # fmt: skip


def test_the_web_says_when_and_links_to_a_new_request(client, people, step_up, shown_grant):
    step_up(people.alice)
    client.force_login(people.alice)
    response = client.post(f"/grants/{shown_grant.pk}/reveal/", follow=True)
    page = response.content.decode()
    assert "already shown, once at 1 Dec 2026 14:05 UTC" in page
    assert "ask for a new grant of test-db" in page
    assert 'href="/requests/new/?profile=test-db"' in page


def test_the_api_says_when_and_where_to_ask_again(api, people, shown_grant):
    response = api(people.alice).post(
        f"/api/v1/grants/{shown_grant.pk}/reveal/",
        {"otp": current_code(phone_of(people.alice))},
        format="json",
    )
    assert response.status_code == 409
    message = response.json()["error"]["message"]
    assert "already shown, once at 1 Dec 2026 14:05 UTC" in message
    assert "ask for a new grant of test-db (http://testserver/requests/new/?profile=test-db)" in (
        message
    )
