"""The operator view: failed grants, provider health, retrying a revocation."""

import pytest
from django.core.cache import cache

from audit import trail
from broker import lifecycle
from broker.models import AccessProfile, Grant
from tests.support.grants import active_grant

pytestmark = pytest.mark.django_db(transaction=True)
UNREACHABLE = "postgresql://postgres:x@127.0.0.1:1/postgres"


def test_only_admins(client, people, catalog):
    client.force_login(people.bob)
    assert client.get("/ops/").status_code == 403


def test_health_and_a_failed_revocation_retried(
    client, pg_target, vault, aws, people, submit, step_up, monkeypatch, settings
):
    settings.AIRLOCK_REVOKE_MAX_ATTEMPTS = 1
    grant = active_grant(people, submit, step_up)
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=trail.SYSTEM)
    monkeypatch.setenv("AIRLOCK_PG_DSN_TEST", UNREACHABLE)
    lifecycle.grant_revoke_execute(grant_id=grant.id)
    assert Grant.objects.get(pk=grant.pk).status == "revoke_failed"

    client.force_login(people.admin)
    page = client.get("/ops/").content.decode()
    assert "cannot connect to PostgreSQL" in page and "Retry revocation" in page
    client.force_login(people.bob)
    assert client.post(f"/ops/grants/{grant.id}/retry/").status_code == 403

    monkeypatch.setenv("AIRLOCK_PG_DSN_TEST", pg_target.admin_dsn)
    client.force_login(people.admin)
    assert "reachable" in client.get("/ops/").content.decode()
    client.post(f"/ops/grants/{grant.id}/retry/")
    assert Grant.objects.get(pk=grant.pk).status == "revoking"
    lifecycle.grant_revoke_execute(grant_id=grant.id)
    assert Grant.objects.get(pk=grant.pk).status == "revoked"
    response = client.post(f"/ops/grants/{grant.id}/retry/", follow=True)
    assert b"not revoke_failed" in response.content


def test_readyz_tells_anyone_ready_or_not_and_only_operators_which_source(
    client, pg_target, vault, aws, catalog, people, monkeypatch, settings
):
    AccessProfile.objects.filter(slug="broken-db").update(enabled=False)  # see below
    cache.delete("airlock:readyz")
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    client.force_login(people.bob)  # signed in, but not an operator
    assert client.get("/readyz").json() == {"status": "ok"}
    people.dave.is_staff = True
    people.dave.save()
    for operator in (people.admin, people.dave):
        client.force_login(operator)
        checks = client.get("/readyz").json()["checks"]
        assert checks["database"] and checks["postgres.role:test-db"]
        assert checks["vault.token:vault-token"]

    settings.VAULT_ADDR = "http://127.0.0.1:1"
    assert client.get("/readyz").status_code == 200  # answered from the short cache
    cache.delete("airlock:readyz")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["vault.token:vault-token"] is False
    assert "127.0.0.1:1" not in response.content.decode()
    client.logout()
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json() == {"status": "unavailable"}


def test_readyz_fails_a_profile_whose_revocation_dry_run_fails(
    client, pg_target, vault, aws, catalog, people
):
    cache.delete("airlock:readyz")
    client.force_login(people.admin)
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    # The server answers, but a role cannot be granted what does not exist.
    assert checks["postgres.role:broken-db"] is False and checks["postgres.role:test-db"]
    page = client.get("/ops/").content.decode()
    assert "revocation dry run" in page and "no_such_role" in page
