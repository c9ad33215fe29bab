"""Approve, deny, cancel and expire: who may decide, N-of-M, one outcome."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from broker import lifecycle
from broker.models import AccessRequest, Approval, Grant
from tests.support.people import WEB


def approve(request, user, **kw):
    return lifecycle.access_request_approve(request_id=request.id, approver=user, info=WEB, **kw)


def deny(request, user, reason="not now"):
    return lifecycle.access_request_deny(
        request_id=request.id, approver=user, reason=reason, info=WEB
    )


def test_bob_approves_and_a_grant_is_scheduled(people, submit, step_up):
    request = submit(people.alice)
    step_up(people.bob)
    approve(request, people.bob, comment="ok")
    request.refresh_from_db()
    assert request.status == AccessRequest.Status.APPROVED
    assert request.grant.status == Grant.Status.SCHEDULED
    decision = Approval.objects.get(request=request)
    assert decision.approver == people.bob and decision.mfa_verified_at is not None
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions[-3:] == ["request.decision.approve", "request.approved", "grant.scheduled"]


def test_approval_without_a_recent_step_up_is_refused(people, submit, step_up, settings):
    request = submit(people.alice)
    with pytest.raises(lifecycle.StepUpRequired):
        approve(request, people.bob)
    step_up(people.bob)
    settings.AIRLOCK_STEP_UP_WINDOW = timedelta(seconds=0)
    with pytest.raises(lifecycle.StepUpRequired):
        approve(request, people.bob)
    assert not Approval.objects.exists()


@pytest.mark.parametrize(
    ("approver", "slug", "message"),
    [
        ("charlie", "test-db", "not an approver for test-db"),
        ("erin", "test-db", "not an approver for test-db"),  # approves other-db only
        ("dave", "test-db", "not an approver"),
    ],
)
def test_people_who_are_not_approvers_cannot_approve(
    people, submit, step_up, approver, slug, message
):
    request = submit(people.alice, slug=slug)
    user = getattr(people, approver)
    step_up(user)
    with pytest.raises(lifecycle.NotAllowed, match=message):
        approve(request, user)
    with pytest.raises(lifecycle.NotAllowed):
        deny(request, user)
    request.refresh_from_db()
    assert request.status == AccessRequest.Status.PENDING
    assert not Approval.objects.exists()


def test_nobody_approves_their_own_request(people, submit, step_up, catalog):
    # Make bob a requester of test-db too: he is an approver, but not of his own request.
    people.bob.groups.add(*people.alice.groups.all())
    request = submit(people.bob)
    step_up(people.bob)
    with pytest.raises(lifecycle.NotAllowed, match="your own request"):
        approve(request, people.bob)
    assert not Approval.objects.exists()


def test_two_of_two_needs_both_and_each_decides_once(people, submit, step_up):
    request = submit(people.alice, slug="test-db-critical", ticket="INC-7")
    step_up(people.bob)
    step_up(people.carol)
    approve(request, people.bob)
    request.refresh_from_db()
    assert request.status == AccessRequest.Status.PENDING
    with pytest.raises(lifecycle.Conflict, match="already decided"):
        approve(request, people.bob)
    approve(request, people.carol)
    request.refresh_from_db()
    assert request.status == AccessRequest.Status.APPROVED
    assert Grant.objects.filter(request=request).count() == 1
    approved = AuditEvent.objects.get(action="request.approved")
    assert approved.data == {"approvers": ["bob", "carol"], "approvals_required": 2}


def test_a_deny_by_any_eligible_approver_ends_it(people, submit, step_up):
    request = submit(people.alice, slug="test-db-critical", ticket="INC-7")
    step_up(people.bob)
    step_up(people.carol)
    approve(request, people.bob)
    deny(request, people.carol, reason="no change window")
    request.refresh_from_db()
    assert (request.status, request.decision_reason) == ("denied", "no change window")
    assert not Grant.objects.exists()


def test_deny_needs_a_reason(people, submit, step_up):
    request = submit(people.alice)
    step_up(people.bob)
    with pytest.raises(lifecycle.InvalidRequest) as caught:
        deny(request, people.bob, reason=" ")
    assert "reason" in caught.value.fields
    with pytest.raises(lifecycle.InvalidRequest, match="control characters"):
        deny(request, people.bob, reason="no\x1b]0;approved\x07")  # read in terminals too
    assert AccessRequest.objects.get(pk=request.pk).status == "pending"


def test_approve_after_cancel_is_a_conflict(people, submit, step_up):
    request = submit(people.alice)
    lifecycle.access_request_cancel(request_id=request.id, actor=people.alice, info=WEB)
    step_up(people.bob)
    with pytest.raises(lifecycle.Conflict, match="already cancelled"):
        approve(request, people.bob)
    with pytest.raises(lifecycle.Conflict):
        lifecycle.access_request_cancel(request_id=request.id, actor=people.alice, info=WEB)


def test_only_the_requester_can_cancel(people, submit):
    request = submit(people.alice)
    with pytest.raises(lifecycle.NotAllowed):
        lifecycle.access_request_cancel(request_id=request.id, actor=people.bob, info=WEB)


def test_unknown_or_malformed_request_ids_are_not_found(people, step_up):
    step_up(people.bob)
    for bad in ["00000000-0000-0000-0000-000000000000", "not-a-uuid"]:
        with pytest.raises(lifecycle.NotFound):
            lifecycle.access_request_approve(request_id=bad, approver=people.bob, info=WEB)


def test_pending_requests_expire_after_their_ttl(people, submit, step_up):
    request = submit(people.alice)
    AccessRequest.objects.filter(pk=request.pk).update(
        pending_until=timezone.now() - timedelta(seconds=1)
    )
    step_up(people.bob)
    with pytest.raises(lifecycle.Conflict, match="expired"):
        approve(request, people.bob)
    assert lifecycle.access_requests_expire_pending() == 1
    request.refresh_from_db()
    assert request.status == AccessRequest.Status.EXPIRED
    assert AuditEvent.objects.filter(action="request.expired", target_id=str(request.id)).exists()
    assert lifecycle.access_requests_expire_pending() == 0


def test_a_profile_removed_from_the_catalog_cannot_be_approved(people, submit, step_up, catalog):
    request = submit(people.alice)
    catalog["test-db"].enabled = False
    catalog["test-db"].save()
    step_up(people.bob)
    with pytest.raises(lifecycle.Conflict, match="removed from the catalog"):
        approve(request, people.bob)
