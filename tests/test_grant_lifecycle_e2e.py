"""End to end with a real Celery worker, Redis, PostgreSQL and a real target
database: alice asks, bob approves, the credential works, then it does not."""

import psycopg
import pytest

from broker import lifecycle
from broker.audit import verify_chain
from broker.models import AuditEvent, Grant
from tests.conftest import WEB
from tests.grants import credential_dsn
from tests.pg_target import can_login, wait_until

pytestmark = pytest.mark.slow


def role_exists(cluster, role: str) -> bool:
    with psycopg.connect(cluster.admin_dsn) as conn:
        return bool(conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone())


def grant_in(request, *statuses: str) -> bool:
    return Grant.objects.filter(request=request, status__in=statuses).exists()


def approved_and_active(people, submit, step_up, duration: str):
    request = submit(people.alice, duration=duration)
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.id, approver=people.bob, info=WEB)
    assert wait_until(lambda: grant_in(request, "active", "failed")), "activation never ran"
    grant = Grant.objects.get(request=request)
    assert grant.status == "active", grant.last_error
    step_up(people.alice)
    credential = lifecycle.grant_reveal(grant_id=grant.id, user=people.alice, info=WEB)
    return grant, credential


def test_early_revoke_kills_the_credential_at_the_source(
    pg_target, celery_worker, people, submit, step_up
):
    grant, credential = approved_and_active(people, submit, step_up, "10m")
    with psycopg.connect(credential_dsn(credential)) as conn:
        assert conn.execute("SELECT count(*) FROM payments").fetchone() == (2,)

    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, reason="done", info=WEB)
    assert wait_until(lambda: grant_in(grant.request, "revoked")), "revocation never ran"

    assert not can_login(credential_dsn(credential))
    assert not role_exists(pg_target, credential["user"])
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
    assert verify_chain().intact


def test_a_short_grant_expires_on_time_through_the_eta_task(
    pg_target, celery_worker, people, submit, step_up
):
    grant, credential = approved_and_active(people, submit, step_up, "3s")
    assert can_login(credential_dsn(credential))
    assert wait_until(lambda: grant_in(grant.request, "revoked"), timeout=15)

    grant.refresh_from_db()
    assert grant.end_reason == "expired"
    lag = (grant.ended_at - grant.expires_at).total_seconds()
    assert 0 <= lag < 3, f"revoked {lag:.2f}s after expiry"
    assert not can_login(credential_dsn(credential))
    assert not role_exists(pg_target, credential["user"])
    assert AuditEvent.objects.filter(action="grant.expired", target_id=str(grant.id)).count() == 1
    assert verify_chain().intact
