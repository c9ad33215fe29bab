"""A credential is shown once, to its owner, after MFA; it is never stored in
plaintext, never in the audit trail or the logs, and wiped when the grant ends."""

import logging

import pytest

from audit.models import AuditEvent
from broker import lifecycle
from broker.models import Grant
from lib.secrets import decrypt_secret
from tests.support.grants import active_grant
from tests.support.people import WEB

pytestmark = pytest.mark.django_db(transaction=True)


def reveal(grant, user):
    return lifecycle.grant_reveal(grant_id=grant.id, user=user, info=WEB)


def test_shown_once_to_the_owner_after_mfa(pg_target, people, submit, step_up, caplog):
    caplog.set_level(logging.DEBUG)
    grant = active_grant(people, submit, step_up)
    stored = bytes(grant.secret)
    with pytest.raises(lifecycle.StepUpRequired):
        reveal(grant, people.alice)

    step_up(people.alice)
    credential = reveal(grant, people.alice)
    password = credential["password"]
    assert password not in stored.decode(errors="replace")  # encrypted at rest
    grant.refresh_from_db()
    assert grant.secret is None and grant.revealed_at is not None

    with pytest.raises(lifecycle.Conflict, match="already shown"):
        reveal(grant, people.alice)
    for event in AuditEvent.objects.all():
        assert password not in f"{event.reason} {event.data}"
    assert password not in caplog.text
    assert AuditEvent.objects.filter(action="grant.credential_revealed").count() == 1
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=WEB)
    lifecycle.grant_revoke_execute(grant_id=grant.id)


@pytest.mark.parametrize("who", ["bob", "charlie", "admin"])
def test_nobody_else_can_see_it(pg_target, people, submit, step_up, who):
    grant = active_grant(people, submit, step_up)
    user = getattr(people, who)
    step_up(user)
    with pytest.raises(lifecycle.NotFound):
        reveal(grant, user)
    assert Grant.objects.get(pk=grant.pk).secret is not None
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.admin, info=WEB)
    lifecycle.grant_revoke_execute(grant_id=grant.id)


def test_an_unrevealed_secret_is_wiped_when_the_grant_ends(pg_target, people, submit, step_up):
    grant = active_grant(people, submit, step_up)
    assert "password" in decrypt_secret(grant.secret)
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.bob, reason="incident over", info=WEB)
    lifecycle.grant_revoke_execute(grant_id=grant.id)
    grant.refresh_from_db()
    assert grant.status == "revoked" and grant.secret is None
    step_up(people.alice)
    with pytest.raises(lifecycle.Conflict, match="revoked"):
        reveal(grant, people.alice)
