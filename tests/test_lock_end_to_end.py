"""A lock on a user, end to end with a real Celery worker: alice holds live
credentials on PostgreSQL, OpenBao (a token and database credentials) and AWS;
carol locks alice; every one of them stops working at its source, and the
trail shows the lock before each revocation."""

import pytest

from audit.models import AuditEvent
from audit.trail import verify_chain
from broker import lifecycle
from broker.models import Grant
from lib.providers import get_provider
from tests.support.grants import credential_works
from tests.support.people import WEB
from tests.support.pg_target import wait_until
from tests.test_grant_lifecycle_e2e import PROFILES, approved_and_active

pytestmark = pytest.mark.slow


def test_a_lock_kills_every_live_credential_of_the_user_at_its_source(
    pg_target, vault, aws, celery_worker, people, submit, step_up
):
    held = [approved_and_active(people, submit, step_up, slug, "20m") for slug in PROFILES]
    for _, credential in held:
        assert credential_works(credential, pg_target, vault)

    step_up(people.carol)
    lock, changes = lifecycle.lock_place(
        actor=people.carol, scope="user", subject="alice", reason="laptop stolen", info=WEB
    )
    assert [change.action for change in changes] == ["revoked"] * len(PROFILES)
    ids = [grant.pk for grant, _ in held]
    assert wait_until(lambda: Grant.objects.filter(pk__in=ids, status="revoked").count() == 4)

    for grant, credential in held:
        assert not credential_works(credential, pg_target, vault), grant.profile.slug
        grant.refresh_from_db()
        assert not get_provider(grant.profile.provider_kind).check(grant.handle)
        assert str(lock.pk) in grant.end_reason
    placed = AuditEvent.objects.get(action="lock.placed").seq
    revocations = AuditEvent.objects.filter(action="grant.revoked", target_id__in=map(str, ids))
    assert revocations.count() == 4 and all(event.seq > placed for event in revocations)
    assert verify_chain().intact
