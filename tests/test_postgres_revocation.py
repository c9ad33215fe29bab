"""postgres.role revocation takes the access away with the least-privileged admin
the README documents, as with a superuser: sessions opened in the window end (a
plain one and one that switched to the granted role with SET ROLE), the role goes,
and a step the server refuses leaves the role unable to act until a retry finishes."""

import re
from pathlib import Path

import psycopg
import pytest
from django.utils import timezone

from broker import lifecycle
from broker.models import Grant
from integrations.postgres.sandbox import README_ADMIN_STATEMENTS
from lib.providers import get_provider
from tests.support.grants import active_grant, credential_dsn
from tests.support.people import WEB
from tests.support.pg_target import can_login, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
NOINHERIT_ADMIN = ["CREATE ROLE {admin} LOGIN CREATEROLE NOINHERIT;"]


@pytest.fixture(scope="module")
def readme_admin_dsn(pg_target) -> str:
    """A non-superuser admin made with exactly the README's statements."""
    return pg_target.create_admin("airlock")


@pytest.fixture(params=["readme-admin", "superuser"])
def admin(request, pg_target, readme_admin_dsn, monkeypatch) -> str:
    """The test catalog's postgres.role profiles run as this admin."""
    dsn = readme_admin_dsn if request.param == "readme-admin" else pg_target.admin_dsn
    monkeypatch.setenv("AIRLOCK_PG_DSN_TEST", dsn)
    return request.param


def revealed(grant: Grant, people, step_up) -> dict:
    step_up(people.alice)
    return lifecycle.grant_reveal(grant_id=grant.pk, user=people.alice, info=WEB)


def held_sessions(credential: dict) -> tuple[psycopg.Connection, psycopg.Connection]:
    """Two sessions opened inside the window: a plain one, and one that switched
    to the granted role (it then acts as app_reader, whatever its own role can do)."""
    plain = psycopg.connect(credential_dsn(credential), autocommit=True)
    switched = psycopg.connect(credential_dsn(credential), autocommit=True)
    switched.execute("SET ROLE app_reader")
    for session in (plain, switched):
        assert reads_payments(session)
    return plain, switched


def reads_payments(session: psycopg.Connection) -> bool:
    try:
        return session.execute("SELECT count(*) FROM payments").fetchone() == (2,)
    except psycopg.errors.InsufficientPrivilege:
        return False


def role_row(pg_target, role: str):
    with psycopg.connect(pg_target.admin_dsn) as conn:
        return conn.execute(
            "SELECT rolcanlogin, rolconnlimit,"
            " (SELECT count(*) FROM pg_auth_members WHERE member = r.oid)"
            " FROM pg_roles r WHERE rolname = %s",
            [role],
        ).fetchone()


def assert_access_is_gone(grant: Grant, credential: dict, sessions, pg_target) -> None:
    grant.refresh_from_db()
    assert grant.status == "revoked", grant.last_error
    for session in sessions:
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")  # the server ended it
    assert role_row(pg_target, credential["user"]) is None
    assert not can_login(credential_dsn(credential))


def test_an_early_revoke_ends_the_sessions_and_drops_the_role(
    admin, pg_target, people, submit, step_up
):
    grant = active_grant(people, submit, step_up)
    credential = revealed(grant, people, step_up)
    sessions = held_sessions(credential)

    lifecycle.grant_revoke(grant_id=grant.pk, actor=people.alice, reason="done", info=WEB)
    lifecycle.grant_revoke_execute(grant_id=grant.pk)

    assert_access_is_gone(grant, credential, sessions, pg_target)


def test_a_natural_expiry_ends_the_sessions_opened_in_the_window(
    admin, pg_target, people, submit, step_up
):
    grant = active_grant(people, submit, step_up, duration="3s")
    credential = revealed(grant, people, step_up)
    sessions = held_sessions(credential)
    assert wait_until(lambda: timezone.now() > grant.expires_at, timeout=10)
    # VALID UNTIL only refuses new logins: the sessions opened before it go on.
    assert not can_login(credential_dsn(credential))
    assert all(reads_payments(session) for session in sessions)
    assert get_provider("postgres.role").check(grant.handle)  # so the role is still live

    lifecycle.grant_expire(grant_id=grant.pk)  # what the ETA task and the sweeper run

    assert_access_is_gone(grant, credential, sessions, pg_target)
    assert not get_provider("postgres.role").check(grant.handle)


def test_a_refused_step_leaves_the_role_unable_to_act_and_a_retry_finishes(
    pg_target, people, submit, step_up, monkeypatch
):
    # An admin that may create and alter roles but not use their privileges, so
    # the server refuses to let it end their sessions.
    monkeypatch.setenv("AIRLOCK_PG_DSN_TEST", pg_target.create_admin("noinherit", NOINHERIT_ADMIN))
    grant = active_grant(people, submit, step_up)
    credential = revealed(grant, people, step_up)
    plain, switched = held_sessions(credential)

    lifecycle.grant_revoke(grant_id=grant.pk, actor=people.alice, reason="done", info=WEB)
    lifecycle.grant_revoke_execute(grant_id=grant.pk)

    grant.refresh_from_db()
    assert grant.status == "revoke_failed"
    assert "sessions could not be ended" in grant.last_error
    assert "pg_signal_backend" in grant.last_error  # the server's own reason
    # What the committed first step took away: new logins and the granted role.
    assert role_row(pg_target, credential["user"]) == (False, 0, 0)
    assert not can_login(credential_dsn(credential))
    assert not reads_payments(plain)
    # Only ending it stops a session that switched roles: why the next steps matter.
    assert reads_payments(switched)

    # An operator fixes the admin; the sweeper's next retry finishes the job.
    with psycopg.connect(pg_target.admin_dsn, autocommit=True) as conn:
        conn.execute("ALTER ROLE noinherit INHERIT")
    lifecycle.grant_revoke_execute(grant_id=grant.pk)

    assert_access_is_gone(grant, credential, (plain, switched), pg_target)


def test_the_readme_gives_the_statements_the_tests_make_their_admin_with():
    readme = Path("README.md").read_text()
    section = readme.split("### Provider `postgres.role`")[1].split("\n### ")[0]
    for versions, statements in README_ADMIN_STATEMENTS.items():
        block = re.search(rf"-- {versions}\n(.*?)```", section, re.DOTALL)
        assert block, f"no SQL block for {versions} in README's postgres.role section"
        shown = [line for line in block[1].splitlines() if line and not line.startswith("--")]
        assert shown == [
            s.format(admin="airlock", granted_role="payments_readonly") for s in statements
        ]


@pytest.mark.parametrize(("version", "refused"), [(140011, True), (150020, False), (160004, False)])
def test_servers_older_than_15_are_refused(version, refused):
    """Before 15 a role could grant itself to another login, whose sessions the
    revocation would not end. (Only PostgreSQL 15 runs here: the rule is tested on
    the version numbers the server reports; a 15 server passes it in every test.)"""
    from integrations.postgres.provider import refuse_old_server
    from lib.providers import ProviderError

    if refused:
        with pytest.raises(ProviderError, match="needs PostgreSQL 15 or later") as caught:
            refuse_old_server(version)
        assert caught.value.permanent
    else:
        refuse_old_server(version)
