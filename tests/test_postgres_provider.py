"""postgres.role against a real password-authenticated PostgreSQL."""

import logging
import os
import time
import uuid
from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from integrations.postgres.provider import PostgresRoleProvider, _thread_connections
from lib.providers import GrantContext, ProviderError, get_provider
from tests.support.grants import credential_dsn
from tests.support.pg_target import can_login

CONFIG = {"dsn_env": "AIRLOCK_PG_DSN_TEST", "granted_roles": ["app_reader"]}


def context(seconds: float = 600, config=CONFIG, grant_id: str | None = None) -> GrantContext:
    return GrantContext(
        grant_id=grant_id or str(uuid.uuid4()),
        request_id=str(uuid.uuid4()),
        profile_id="test-db",
        username="alice",
        config=config,
        expires_at=timezone.now() + timedelta(seconds=seconds),
    )


def role_row(cluster, role):
    with psycopg.connect(cluster.admin_dsn) as conn:
        return conn.execute(
            "SELECT rolcanlogin, rolvaliduntil FROM pg_roles WHERE rolname = %s", [role]
        ).fetchone()


def test_credential_works_with_the_granted_role_then_dies_on_revoke(pg_target):
    provider = PostgresRoleProvider()
    issued = provider.grant(context())
    credential = issued.credential
    with psycopg.connect(credential_dsn(credential)) as conn:
        assert conn.execute("SELECT sum(amount_cents) FROM payments").fetchone() == (2240,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM payments")
    assert provider.check(issued.handle) is True

    # A session still open at revocation is ended too.
    open_session = psycopg.connect(credential_dsn(credential), autocommit=True)
    provider.revoke(issued.handle)
    with pytest.raises(psycopg.OperationalError):
        open_session.execute("SELECT 1")
    assert not can_login(credential_dsn(credential))
    assert role_row(pg_target, credential["user"]) is None
    assert provider.check(issued.handle) is False
    provider.revoke(issued.handle)  # idempotent: already gone is success


def test_postgres_itself_enforces_the_expiry(pg_target):
    """Principle 1: even with Airlock gone, the login stops working at expires_at."""
    provider = PostgresRoleProvider()
    issued = provider.grant(context(seconds=2))
    _, valid_until = role_row(pg_target, issued.credential["user"])
    assert abs((valid_until - issued.expires_at).total_seconds()) < 1
    assert can_login(credential_dsn(issued.credential))
    time.sleep(2.5)
    assert not can_login(credential_dsn(issued.credential))
    assert role_row(pg_target, issued.credential["user"]) is not None  # nobody revoked it
    provider.revoke(issued.handle)


def test_a_retried_grant_reuses_the_role_and_only_the_new_password_works(pg_target):
    provider = PostgresRoleProvider()
    grant_id = str(uuid.uuid4())
    first = provider.grant(context(grant_id=grant_id))
    second = provider.grant(context(grant_id=grant_id))
    assert first.handle == second.handle
    assert not can_login(credential_dsn(first.credential))
    assert can_login(credential_dsn(second.credential))
    provider.revoke(second.handle)


def test_the_password_never_reaches_the_server_log(pg_target):
    issued = PostgresRoleProvider().grant(context())
    log = (pg_target.dir / "log").read_text()
    assert f'CREATE ROLE "{issued.credential["user"]}"' in log  # statements are logged...
    assert issued.credential["password"] not in log  # ...but only the SCRAM verifier
    PostgresRoleProvider().revoke(issued.handle)


def test_unreachable_server_is_a_transient_error(pg_target, monkeypatch):
    monkeypatch.setenv("AIRLOCK_PG_DSN_DOWN", "postgresql://postgres:x@127.0.0.1:1/postgres")
    with pytest.raises(ProviderError) as caught:
        PostgresRoleProvider().grant(context(config={**CONFIG, "dsn_env": "AIRLOCK_PG_DSN_DOWN"}))
    assert caught.value.permanent is False
    assert "x@" not in str(caught.value)


def test_missing_granted_role_is_a_permanent_error(pg_target):
    config = {**CONFIG, "granted_roles": ["no_such_role"]}
    with pytest.raises(ProviderError) as caught:
        PostgresRoleProvider().grant(context(config=config))
    assert caught.value.permanent is True
    assert "no_such_role" in str(caught.value)


def test_missing_dsn_is_a_permanent_error(monkeypatch):
    monkeypatch.delenv("AIRLOCK_PG_DSN_UNSET", raising=False)
    with pytest.raises(ProviderError, match="Set AIRLOCK_PG_DSN_UNSET") as caught:
        PostgresRoleProvider().grant(context(config={**CONFIG, "dsn_env": "AIRLOCK_PG_DSN_UNSET"}))
    assert caught.value.permanent is True


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://airlock:100%25sure-s3cr3t@127.0.0.1:5432/postgres".replace("%25", "%"),
        "host=127.0.0.1 user=airlock password=two words-s3cr3t",
    ],
)
def test_a_malformed_dsn_is_named_without_its_password(monkeypatch, caplog, dsn):
    """A password with a bare % in a URL, or a space in key=value form: libpq quotes
    the piece it cannot parse, password included. Neither the error (stored on the
    grant, shown on the operations page) nor the log may carry it."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("AIRLOCK_PG_DSN_BAD", dsn)
    with pytest.raises(ProviderError) as caught:
        get_provider("postgres.role").grant(
            context(config={**CONFIG, "dsn_env": "AIRLOCK_PG_DSN_BAD"})
        )
    assert caught.value.permanent is True
    assert "AIRLOCK_PG_DSN_BAD" in str(caught.value)
    assert "s3cr3t" not in str(caught.value) and "s3cr3t" not in caplog.text


def airlock_sessions(cluster) -> set[int]:
    """Backend pids of the sessions Airlock's provider holds, seen by the server."""
    with psycopg.connect(cluster.admin_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'airlock'"
        ).fetchall()
    return {pid for (pid,) in rows}


def held_session() -> int:
    """The backend pid of this thread's provider connection (other processes of
    the suite, such as its Celery worker, hold sessions of their own)."""
    _, conn = _thread_connections()[os.getpid(), CONFIG["dsn_env"]]
    return conn.info.backend_pid


def test_one_connection_serves_call_after_call(pg_target):
    provider = PostgresRoleProvider()
    first = provider.grant(context())
    session = held_session()
    second = provider.grant(context())
    provider.revoke(first.handle)
    provider.revoke(second.handle)
    assert held_session() == session and session in airlock_sessions(pg_target)
    assert not can_login(credential_dsn(first.credential))


def test_a_connection_the_server_ended_is_replaced_without_a_failed_call(pg_target):
    provider = PostgresRoleProvider()
    provider.healthcheck(CONFIG)
    ended = held_session()
    with psycopg.connect(pg_target.admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", [ended])
    issued = provider.grant(context())  # no error: a fresh connection took over
    assert can_login(credential_dsn(issued.credential))
    provider.revoke(issued.handle)
    assert held_session() != ended and ended not in airlock_sessions(pg_target)


def test_a_changed_dsn_gets_a_connection_of_its_own(pg_target, monkeypatch):
    provider = PostgresRoleProvider()
    provider.healthcheck(CONFIG)
    before = held_session()
    monkeypatch.setenv("AIRLOCK_PG_DSN_TEST", pg_target.admin_dsn + "?connect_timeout=4")
    provider.healthcheck(CONFIG)
    assert held_session() != before
    assert before not in airlock_sessions(pg_target)  # the old one was closed


def test_a_failed_call_closes_its_connection(pg_target):
    provider = PostgresRoleProvider()
    provider.healthcheck(CONFIG)
    session = held_session()
    with pytest.raises(ProviderError):
        provider.grant(context(config={**CONFIG, "granted_roles": ["no_such_role"]}))
    assert session not in airlock_sessions(pg_target)
    assert (os.getpid(), CONFIG["dsn_env"]) not in _thread_connections()  # the next opens anew
