"""The requester's standing is checked at every step, not only at submission:
approval, activation, extension and reveal each confirm that the user is active,
may still request the profile, and that the profile is still in the catalog.

Here the standing changes quietly (a row deleted or updated without Django's
signals, as raw SQL would), so that only the lifecycle's own checks stand
between the requester and the access; tests/test_standing_enforcement.py covers
what happens when the change is made through Airlock or the ORM."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from audit.models import AuditEvent
from broker import lifecycle
from broker.models import AccessProfile, AccessRequest, Grant
from tests.support.grants import active_grant, extend, half_way
from tests.support.people import WEB, leave_quietly

pytestmark = pytest.mark.usefixtures("pg_target")


def disable_quietly(slug: str = "test-db") -> None:
    AccessProfile.objects.filter(slug=slug).update(enabled=False)


def deactivate_quietly(user) -> None:
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)


LOSSES = {
    "left the group": (leave_quietly, "alice may no longer request test-db"),
    "profile removed": (lambda user: disable_quietly(), "test-db was removed from the catalog"),
    "account disabled": (deactivate_quietly, "alice's account is disabled"),
}


@pytest.fixture(params=sorted(LOSSES))
def loss(request, people):
    lose, message = LOSSES[request.param]
    return (lambda: lose(people.alice)), message


def test_the_approval_is_refused(people, submit, step_up, loss):
    request = submit(people.alice)
    lose, message = loss
    lose()
    step_up(people.bob)
    with pytest.raises(lifecycle.Conflict, match=message):
        lifecycle.access_request_approve(request_id=request.pk, approver=people.bob, info=WEB)
    assert AccessRequest.objects.get(pk=request.pk).status == "pending"
    assert not Grant.objects.filter(request=request).exists()


def test_a_denial_still_goes_through(people, submit, step_up):
    request = submit(people.alice)
    leave_quietly(people.alice)
    step_up(people.bob)
    lifecycle.access_request_deny(
        request_id=request.pk, approver=people.bob, reason="she moved team", info=WEB
    )
    assert AccessRequest.objects.get(pk=request.pk).status == "denied"


def test_the_activation_mints_nothing(people, submit, step_up, pg_target, loss):
    request = submit(people.alice)
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.pk, approver=people.bob, info=WEB)
    grant = Grant.objects.get(request=request)
    lose, message = loss
    lose()

    lifecycle.grant_activate(grant_id=grant.pk)

    grant.refresh_from_db()
    assert grant.status == "failed" and message in grant.end_reason
    assert grant.handle == {} and grant.secret is None
    assert AuditEvent.objects.get(action="grant.failed", target_id=str(grant.pk)).reason == (
        grant.end_reason
    )


def test_the_reveal_is_refused(people, submit, step_up, loss):
    grant = active_grant(people, submit, step_up)
    step_up(people.alice)
    lose, message = loss
    lose()
    with pytest.raises(lifecycle.NotAllowed, match=message):
        lifecycle.grant_reveal(grant_id=grant.pk, user=people.alice, info=WEB)
    assert not AuditEvent.objects.filter(action="grant.credential_revealed").exists()


def test_an_extension_cannot_be_asked_for(people, submit, step_up, loss):
    grant = active_grant(people, submit, step_up)
    half_way(grant)
    lose, message = loss
    lose()
    with pytest.raises(lifecycle.NotAllowed, match=message):
        extend(grant, people.alice)
    assert not AccessRequest.objects.filter(extends=grant).exists()


def test_an_approved_extension_is_not_applied(people, submit, step_up, loss):
    grant = active_grant(people, submit, step_up)
    half_way(grant)
    extension = extend(grant, people.alice)
    step_up(people.carol)
    lifecycle.access_request_approve(request_id=extension.pk, approver=people.carol, info=WEB)
    lose, message = loss
    lose()

    lifecycle.grant_extend_execute(request_id=extension.pk)

    grant_after = Grant.objects.get(pk=grant.pk)
    assert (grant_after.expires_at, grant_after.extensions) == (grant.expires_at, 0)
    failed = AuditEvent.objects.get(action="grant.extension_failed", target_id=str(grant.pk))
    assert message in failed.reason


def test_an_extension_waiting_for_approval_is_refused(people, submit, step_up):
    grant = active_grant(people, submit, step_up)
    half_way(grant)
    extension = extend(grant, people.alice)
    leave_quietly(people.alice)
    step_up(people.carol)
    with pytest.raises(lifecycle.Conflict, match="alice may no longer request test-db"):
        lifecycle.access_request_approve(request_id=extension.pk, approver=people.carol, info=WEB)


def test_a_requester_who_joins_again_may_go_on(people, submit, step_up):
    request = submit(people.alice)
    leave_quietly(people.alice)
    people.alice.groups.add(Group.objects.get(name="engineers"))
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.pk, approver=people.bob, info=WEB)
    assert AccessRequest.objects.get(pk=request.pk).status == "approved"
