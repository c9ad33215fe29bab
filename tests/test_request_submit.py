"""Submitting a request: eligibility, duration, reason and ticket rules."""

import pytest

from audit.models import AuditEvent
from broker import lifecycle
from broker.models import AccessRequest
from tests.support.locks import lock_behind_its_back


def test_alice_submits_a_pending_request_with_an_audit_event(people, submit):
    request = submit(people.alice, duration="30m", ticket="INC-42")
    assert request.status == AccessRequest.Status.PENDING
    assert request.duration.total_seconds() == 1800
    event = AuditEvent.objects.get(action="request.submitted")
    assert (event.actor, event.target_id, event.to_status) == ("alice", str(request.id), "pending")
    assert (event.source, event.ip, event.user_agent) == ("web", "203.0.113.7", "pytest")
    assert event.data["profile"] == "test-db" and event.data["ticket"] == "INC-42"
    assert event.data["duration"] == "30m"
    assert event.data["risk"] == request.risk_score
    assert "first time for test-db" in event.data["risk_factors"]


def test_default_duration_applies_when_none_is_given(people, submit):
    request = submit(people.alice, duration=None)
    assert request.duration.total_seconds() == 3600


def test_charlie_may_not_request(people, submit):
    with pytest.raises(lifecycle.NotAllowed):
        submit(people.charlie)
    assert not AccessRequest.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"duration": "3h"}, "duration", "at most 2h"),
        ({"reason": "   "}, "reason", "a reason is required"),
        ({"reason": "x" * 2001}, "reason", "at most 2000"),
        # Stored (PostgreSQL takes no NUL) and shown again, in terminals too.
        ({"reason": "INC-1 \x00"}, "reason", "no control characters"),
        ({"reason": "INC-1 \x1b]0;all clear\x07"}, "reason", "no control characters"),
        ({"ticket": "INC-1\x00"}, "ticket", "no control characters"),
        ({"ticket": "JIRA-1"}, "ticket", "must match"),
        ({"slug": "test-db-critical", "ticket": ""}, "ticket", "a ticket reference is required"),
    ],
)
def test_invalid_requests_name_the_field_and_change_nothing(people, submit, kwargs, field, message):
    with pytest.raises(lifecycle.InvalidRequest) as caught:
        submit(people.alice, **kwargs)
    assert message in caught.value.fields[field]
    assert not AccessRequest.objects.exists()
    assert not AuditEvent.objects.filter(action="request.submitted").exists()


def test_a_second_pending_request_for_the_same_profile_is_refused(people, submit):
    submit(people.alice)
    with pytest.raises(lifecycle.Conflict, match="already have a pending request"):
        submit(people.alice)
    assert AccessRequest.objects.count() == 1


def test_refused_when_the_only_other_approver_is_locked(people, catalog, submit):
    # A locked approver cannot decide: a request only they could approve would wait
    # for nothing (or for the lock to end) instead of failing closed now.
    lock_behind_its_back(people.bob, scope="user", user=people.erin)
    with pytest.raises(lifecycle.InvalidRequest, match="not enough"):
        submit(people.alice, slug="other-db")
    assert not AccessRequest.objects.exists()


def test_a_disabled_profile_cannot_be_requested(people, catalog, submit):
    catalog["test-db"].enabled = False
    catalog["test-db"].save()
    with pytest.raises(lifecycle.InvalidRequest, match="disabled"):
        submit(people.alice)


def test_refused_when_nobody_else_could_approve(people, catalog, submit):
    # bob may request other-db too, but its only approver is erin: take her away.
    people.erin.is_active = False
    people.erin.save()
    with pytest.raises(lifecycle.InvalidRequest, match="not enough"):
        submit(people.alice, slug="other-db")
    assert not AccessRequest.objects.exists()
