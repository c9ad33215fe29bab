"""The sandbox's PostgreSQL (`make run`): a fresh cluster set up with the example
catalog's granted roles and an admin made with exactly the README's statements,
not a superuser, which passes the revocation dry run and mints working roles."""

import uuid
from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from integrations.postgres.sandbox import ADMIN, configure_sandbox
from lib.providers import GrantContext, get_provider
from tests.support.pg_target import ADMIN_PASSWORD, TargetCluster


@pytest.fixture
def sandbox_dsn(monkeypatch):
    cluster = TargetCluster()
    cluster.start()
    dsn = configure_sandbox(cluster.port, ADMIN_PASSWORD)
    monkeypatch.setenv("AIRLOCK_PG_DSN_PAYMENTS", dsn)
    yield dsn
    cluster.stop()


def config(role: str) -> dict:
    return {"dsn_env": "AIRLOCK_PG_DSN_PAYMENTS", "granted_roles": [role]}


@pytest.mark.django_db
def test_the_example_profiles_work_against_the_sandbox(sandbox_dsn):
    with psycopg.connect(sandbox_dsn) as conn:
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [ADMIN])
        assert superuser.fetchone() == (False,)
    provider = get_provider("postgres.role")
    for role in ("payments_readonly", "payments_readwrite"):
        provider.healthcheck(config(role))  # the dry run: create, log in, revoke, drop
    issued = provider.grant(
        GrantContext(
            grant_id=str(uuid.uuid4()), request_id=str(uuid.uuid4()),
            profile_id="payments-db-readonly", username="alice",
            config=config("payments_readonly"),
            expires_at=timezone.now() + timedelta(minutes=30),
        )
    )  # fmt: skip
    url = dict(provider.present(issued.credential))["Connection string"]
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM payments").fetchone() == (2,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO payments VALUES (3, 1)")
    provider.revoke(issued.handle)
