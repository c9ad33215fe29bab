"""Where a request stands, at a glance: the request page's stepper (requested →
approved → active → ended, or where it stopped) and the grant page's bar of its
window."""

from datetime import timedelta

import pytest
from django.utils import timezone

from broker.models import Grant
from broker.selectors.requests import request_steps, window_used
from tests.support.activity import past_grant, past_request


def steps(access_request, grant=None) -> list[tuple[str, str]]:
    return [(step.label, step.state) for step in request_steps(access_request, grant)]


@pytest.fixture
def asked(people, catalog):
    def request(**kwargs):
        return past_request(
            catalog["test-db"], people.alice, timezone.now() - timedelta(hours=1), **kwargs
        )

    return request


def test_each_stage_of_a_request(asked, people):
    pending = asked(status="pending")
    assert steps(pending) == [
        ("Requested", "done"),
        ("Waiting for approval", "current"),
        ("Active", "todo"),
        ("Ended", "todo"),
    ]
    denied = asked(status="denied", approver=people.bob, decision="deny")
    assert steps(denied) == [("Requested", "done"), ("Denied", "failed")]
    approved = asked(approver=people.bob)
    assert steps(approved)[1:3] == [("Approved", "done"), ("Scheduled", "current")]
    grant = past_grant(approved, timezone.now() - timedelta(minutes=30))
    assert steps(approved, grant)[2:] == [("Active", "current"), ("Ends", "todo")]
    grant.status, grant.ended_at = Grant.Status.REVOKED, timezone.now()
    assert steps(approved, grant)[2:] == [("Active", "done"), ("Ended", "done")]
    grant.status, grant.ended_at = Grant.Status.REVOKE_FAILED, None
    assert steps(approved, grant)[3] == ("Revocation failed", "failed")
    scheduled = asked(approver=people.bob)
    never = past_grant(scheduled, timezone.now())
    never.status, never.activated_at, never.ended_at = Grant.Status.REVOKED, None, timezone.now()
    assert steps(scheduled, never)[2] == ("Ended before it began", "failed")
    glass = asked(approver=people.alice, break_glass=True)
    assert steps(glass)[1] == ("Break-glass", "done")


def test_the_window_bar_follows_the_clock(asked, people):
    grant = past_grant(asked(approver=people.bob), timezone.now() - timedelta(minutes=15))
    assert window_used(grant, grant.activated_at + timedelta(minutes=15)) == 25
    assert window_used(grant, grant.expires_at + timedelta(minutes=5)) == 100
    grant.status = Grant.Status.REVOKED
    assert window_used(grant, timezone.now()) is None


def test_the_pages_show_them(client, asked, people):
    approved = asked(approver=people.bob)
    grant = past_grant(approved, timezone.now() - timedelta(minutes=15))
    client.force_login(people.alice)
    request_page = client.get(f"/requests/{approved.pk}/").content.decode()
    assert '<ol class="stepper" aria-label="Where this request is">' in request_page
    assert 'class="current" aria-current="step"' in request_page
    grant_page = client.get(f"/grants/{grant.pk}/").content.decode()
    assert '<progress id="grant-window" max="100" value="25"' in grant_page
    assert '<label for="grant-window">Window used</label>' in grant_page
