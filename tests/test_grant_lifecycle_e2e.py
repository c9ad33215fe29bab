"""End to end with a real Celery worker, Redis, PostgreSQL, a real target
database and a real OpenBao, for every provider kind: alice asks, bob
approves, the credential works, then it does not."""

import pytest

from audit.models import AuditEvent
from audit.trail import verify_chain
from broker import lifecycle
from broker.models import Grant
from lib.providers import get_provider
from tests.support.grants import credential_works
from tests.support.people import WEB
from tests.support.pg_target import wait_until

pytestmark = pytest.mark.slow
# postgres.role, vault.token, vault.database, aws.sts (vault.ssh: tests/test_vault_ssh.py,
# since a certificate cannot stop working before its own end)
PROFILES = ["test-db", "vault-token", "vault-db", "aws-reader"]


def grant_in(request, *statuses: str) -> bool:
    return Grant.objects.filter(request=request, status__in=statuses).exists()


def approved_and_active(people, submit, step_up, slug: str, duration: str):
    request = submit(people.alice, slug=slug, duration=duration)
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.id, approver=people.bob, info=WEB)
    assert wait_until(lambda: grant_in(request, "active", "failed")), "activation never ran"
    grant = Grant.objects.get(request=request)
    assert grant.status == "active", grant.last_error
    step_up(people.alice)
    credential = lifecycle.grant_reveal(grant_id=grant.id, user=people.alice, info=WEB)
    return grant, credential


@pytest.mark.parametrize("slug", PROFILES)
def test_early_revoke_kills_the_credential_at_the_source(
    pg_target, vault, aws, celery_worker, people, submit, step_up, slug
):
    grant, credential = approved_and_active(people, submit, step_up, slug, "20m")
    assert credential_works(credential, pg_target, vault)

    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, reason="done", info=WEB)
    assert wait_until(lambda: grant_in(grant.request, "revoked")), "revocation never ran"

    assert not credential_works(credential, pg_target, vault)
    grant.refresh_from_db()
    assert not get_provider(grant.profile.provider_kind).check(grant.handle)
    actions = list(
        AuditEvent.objects.filter(target_id=str(grant.id)).values_list("action", flat=True)
    )
    assert actions == [
        "grant.scheduled",
        "grant.activated",
        "grant.credential_revealed",
        "grant.revoke_requested",
        "grant.revoked",
    ]
    if slug == "aws-reader":
        revoked = AuditEvent.objects.get(action="grant.revoked", target_id=str(grant.id))
        assert revoked.data["role_policy"] == "payments-reader/AirlockRevokeOlderSessions"
    assert verify_chain().intact


@pytest.mark.parametrize("slug", [p for p in PROFILES if p != "aws-reader"])  # STS: 15 min at least
def test_a_short_grant_expires_on_time_through_the_eta_task(
    pg_target, vault, celery_worker, people, submit, step_up, slug
):
    # vault.database grants end VALID_UNTIL_PAD early at the source: give them room.
    duration = "10s" if slug == "vault-db" else "3s"
    grant, credential = approved_and_active(people, submit, step_up, slug, duration)
    assert credential_works(credential, pg_target, vault)
    assert wait_until(lambda: grant_in(grant.request, "revoked"), timeout=15)

    grant.refresh_from_db()
    assert grant.end_reason == "expired"
    lag = (grant.ended_at - grant.expires_at).total_seconds()
    assert 0 <= lag < 3, f"revoked {lag:.2f}s after expiry"
    assert not credential_works(credential, pg_target, vault)
    assert AuditEvent.objects.filter(action="grant.expired", target_id=str(grant.id)).count() == 1
    assert verify_chain().intact
