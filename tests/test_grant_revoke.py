"""Early revocation: who may revoke, and what happens in each state."""

import pytest

from audit.models import AuditEvent
from broker import lifecycle
from broker.models import Grant
from tests.support.grants import active_grant
from tests.support.people import WEB

pytestmark = pytest.mark.django_db(transaction=True)


def revoke(grant, user):
    return lifecycle.grant_revoke(grant_id=grant.id, actor=user, reason="test", info=WEB)


@pytest.mark.parametrize("who", ["charlie", "erin", "dave"])
def test_outsiders_cannot_revoke(pg_target, people, submit, step_up, who):
    grant = active_grant(people, submit, step_up)
    with pytest.raises(lifecycle.NotAllowed):
        revoke(grant, getattr(people, who))
    assert Grant.objects.get(pk=grant.pk).status == "active"
    revoke(grant, people.alice)
    lifecycle.grant_revoke_execute(grant_id=grant.id)


@pytest.mark.parametrize("who", ["alice", "bob", "admin"])
def test_owner_approver_and_admin_can_revoke(pg_target, people, submit, step_up, who):
    grant = active_grant(people, submit, step_up)
    revoke(grant, getattr(people, who))
    lifecycle.grant_revoke_execute(grant_id=grant.id)
    grant.refresh_from_db()
    assert grant.status == "revoked" and grant.end_reason == "test"
    event = AuditEvent.objects.get(action="grant.revoke_requested", target_id=str(grant.id))
    assert event.actor == who
    with pytest.raises(lifecycle.Conflict, match="already revoked"):
        revoke(grant, people.alice)


def test_revoking_before_activation_mints_nothing(pg_target, people, submit, step_up):
    request = submit(people.alice)
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.id, approver=people.bob, info=WEB)
    grant = Grant.objects.get(request=request)
    revoke(grant, people.alice)
    assert lifecycle.grant_activate(grant_id=grant.id) is None  # the task finds nothing to do
    grant.refresh_from_db()
    assert grant.status == "revoked" and grant.handle == {} and grant.activation_attempts == 0


def test_a_disabled_requester_gets_nothing_minted(pg_target, people, submit, step_up):
    request = submit(people.alice)
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.id, approver=people.bob, info=WEB)
    people.alice.is_active = False
    people.alice.save()  # offboarding ends the grant at once (tests/test_standing_enforcement.py)
    grant = Grant.objects.get(request=request)
    assert lifecycle.grant_activate(grant_id=grant.id) is None  # nothing left to activate
    grant.refresh_from_db()
    assert grant.status == "revoked" and grant.handle == {}
    assert grant.end_reason == "alice's account is disabled"
