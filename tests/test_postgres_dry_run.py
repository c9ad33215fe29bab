"""postgres.role proves at the source that it can revoke: `check_catalog --online`
and the health check run a dry run (a probe role granted like an engineer's,
a session as it that switched to the granted role, the same revocation), which
passes for the README's least-privileged admin and fails, saying why, for an
admin that lacks a privilege revocation needs. Probes never look like orphans
while in use, and never stay."""

import textwrap
from datetime import timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from psycopg import sql

from integrations.postgres import provider as postgres
from integrations.postgres.provider import PostgresRoleProvider
from lib.providers import ProviderError

DSN_ENV = "AIRLOCK_PG_DSN_DRY_RUN"
CONFIG = {"dsn_env": DSN_ENV, "granted_roles": ["app_reader"]}
# Each admin under a name of its own: the provider keeps its connection per DSN.
ADMINS = {
    "dry_run_readme": None,  # the README's statements
    "dry_run_no_createrole": ["CREATE ROLE {admin} LOGIN;"],
    "dry_run_noinherit": ["CREATE ROLE {admin} LOGIN CREATEROLE NOINHERIT;"],
}


@pytest.fixture
def admin_as(pg_target, monkeypatch):
    """Run the provider as one of ADMINS; drop what a failed dry run could not."""

    def make(name: str) -> None:
        monkeypatch.setenv(DSN_ENV, pg_target.create_admin(name, ADMINS[name]))

    yield make
    with psycopg.connect(pg_target.admin_dsn, autocommit=True) as conn:
        for (role,) in conn.execute(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, 'airlock_probe_')"
        ).fetchall():
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def catalog_file(tmp_path) -> str:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            version: 1
            groups: {{eng: [alice], sre: [bob]}}
            profiles:
              - id: db
                title: DB
                provider:
                  kind: postgres.role
                  config: {{dsn_env: {DSN_ENV}, granted_roles: [app_reader]}}
                requesters: {{groups: [eng]}}
                approvers: {{groups: [sre]}}
                max_duration: 1h
            """
        )
    )
    return str(path)


def server_log_since(pg_target, offset: int) -> str:
    return (pg_target.dir / "log").read_text()[offset:]


def log_size(pg_target) -> int:
    return len((pg_target.dir / "log").read_text())


def probes_left(pg_target) -> list[str]:
    with psycopg.connect(pg_target.admin_dsn) as conn:
        rows = conn.execute(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, 'airlock_probe_')"
        ).fetchall()
    return [name for (name,) in rows]


def test_check_catalog_online_passes_for_the_readme_admin(pg_target, admin_as, tmp_path, capsys):
    admin_as("dry_run_readme")
    start = log_size(pg_target)
    call_command("check_catalog", catalog_file(tmp_path), "--online")
    assert "OK and at the sources" in capsys.readouterr().out
    log = server_log_since(pg_target, start)
    # It did what a grant and a revocation do, with a session to end...
    assert 'CREATE ROLE "airlock_probe_' in log and 'SET ROLE "app_reader"' in log
    assert "terminating connection due to administrator command" in log
    assert 'DROP ROLE IF EXISTS "airlock_probe_' in log
    assert probes_left(pg_target) == []  # ...and left nothing behind


@pytest.mark.parametrize(
    "admin, reason",
    [
        pytest.param(
            "dry_run_no_createrole",
            "could not create the probe role airlock_probe_",
            id="no-createrole",
        ),
        pytest.param(
            "dry_run_noinherit",
            "cannot log in any more, but its sessions could not be ended: must be a member"
            " of the role whose process is being terminated or member of pg_signal_backend",
            id="cannot-end-sessions",
        ),
    ],
)
def test_check_catalog_online_fails_for_an_admin_lacking_a_privilege(
    pg_target, admin_as, tmp_path, capsys, admin, reason
):
    admin_as(admin)
    with pytest.raises(CommandError, match="1 error"):
        call_command("check_catalog", catalog_file(tmp_path), "--online")
    error = capsys.readouterr().err
    assert "profile 'db': provider: revocation dry run: PostgreSQL: " in error
    assert reason in error


def test_the_health_check_keeps_the_dry_run_outcome_for_a_while(pg_target, admin_as, monkeypatch):
    admin_as("dry_run_noinherit")
    provider = PostgresRoleProvider()
    start = log_size(pg_target)
    with pytest.raises(ProviderError, match="sessions could not be ended") as first:
        provider.healthcheck(CONFIG)
    with pytest.raises(ProviderError) as second:
        provider.healthcheck(CONFIG)  # answered from what the first one found
    assert str(second.value) == str(first.value) and second.value.permanent
    assert server_log_since(pg_target, start).count('CREATE ROLE "airlock_probe_') == 1

    admin_as("dry_run_readme")  # a new admin (DSN) gets a dry run of its own
    provider.healthcheck(CONFIG)
    provider.healthcheck(CONFIG)
    assert server_log_since(pg_target, start).count('CREATE ROLE "airlock_probe_') == 2
    monkeypatch.setattr(postgres, "DRY_RUN_EVERY", 0)  # time passes
    provider.healthcheck(CONFIG)
    assert server_log_since(pg_target, start).count('CREATE ROLE "airlock_probe_') == 3


def test_reconciliation_leaves_a_probe_in_use_alone_and_takes_a_dead_one(pg_target, admin_as):
    admin_as("dry_run_readme")
    probe, soon = "airlock_probe_0123456789ab", timezone.now() + timedelta(seconds=30)
    with psycopg.connect(pg_target.admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {probe} LOGIN VALID UNTIL '{soon.isoformat()}'")
    # The admin itself is never taken for one of its grants, whatever its name.
    config = {**CONFIG, "role_prefix": "dry_run_readme"}
    assert PostgresRoleProvider().live_handles(config) == []
    assert {"role": probe, "dsn_env": DSN_ENV} not in PostgresRoleProvider().live_handles(CONFIG)

    with psycopg.connect(pg_target.admin_dsn, autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {probe} VALID UNTIL 'yesterday'")  # left by a dead dry run
    assert {"role": probe, "dsn_env": DSN_ENV} in PostgresRoleProvider().live_handles(CONFIG)
    with psycopg.connect(pg_target.admin_dsn, autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {probe} VALID UNTIL 'infinity'")  # not one of ours at all
    assert {"role": probe, "dsn_env": DSN_ENV} in PostgresRoleProvider().live_handles(CONFIG)
