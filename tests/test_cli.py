"""The `airlock` CLI end to end against a live server: alice asks and waits, bob
approves through the API with a TOTP code, alice gets and uses the credential,
then gives it back, and it stops working at the source."""

import io
import shlex
import stat
import sys
import threading

import pytest
import requests

from accounts.tokens import token_create
from airlock_cli import main as cli
from airlock_cli.client import ExitCode
from broker.models import AccessRequest, Grant
from tests.support.people import WEB, current_code, phone_of
from tests.support.pg_target import can_login, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def approve_via_api(live_server, user, request_id, decision="approve", **body) -> requests.Response:
    _, token = token_create(user=user, name="bob's script", days=1, info=WEB)
    return requests.post(
        f"{live_server.url}/api/v1/requests/{request_id}/{decision}/",
        json={"otp": current_code(phone_of(user)), **body},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def in_background(target, *args) -> tuple[threading.Thread, dict]:
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", target(*args)))
    thread.start()
    return thread, result


def pending_request_of(user) -> AccessRequest:
    assert wait_until(lambda: AccessRequest.objects.filter(requester=user).exists(), 20)
    return AccessRequest.objects.filter(requester=user).latest("created_at")


def exports(text: str) -> dict[str, str]:
    """The variables of `export NAME=value` lines, unquoted as a shell would."""
    pairs = (shlex.split(line.removeprefix("export "))[0] for line in text.splitlines())
    return dict(pair.split("=", 1) for pair in pairs)


@pytest.mark.slow
def test_request_wait_approve_creds_revoke(
    airlock, live_server, people, pg_target, celery_worker, capsys, monkeypatch, tmp_path
):
    assert airlock.login(people.alice) == ExitCode.OK
    saved = tmp_path / "config" / "config.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    assert "logged in to" in capsys.readouterr().err

    assert airlock("profiles") == ExitCode.OK
    assert "test-db" in capsys.readouterr().out

    thread, result = in_background(
        airlock, "request", "test-db", "--for", "10m", "--reason", "INC-7 payouts", "--wait"
    )
    request = pending_request_of(people.alice)
    assert approve_via_api(live_server, people.bob, request.id).status_code == 200
    thread.join(60)
    assert result["code"] == ExitCode.OK
    output = capsys.readouterr()
    request_id, grant_id = output.out.split()
    assert request_id == str(request.id)
    assert "waiting for approval (0/1)" in output.err and "approved by bob" in output.err
    assert "active until" in output.err

    assert airlock("status") == ExitCode.OK
    assert f"active   {grant_id}" in capsys.readouterr().out

    monkeypatch.setenv("AIRLOCK_OTP", current_code(phone_of(people.alice)))
    assert airlock("creds", grant_id, "--format", "env") == ExitCode.OK
    env = exports(capsys.readouterr().out)
    assert can_login(env["DATABASE_URL"])
    assert env["PGUSER"] in env["DATABASE_URL"]

    monkeypatch.setenv("AIRLOCK_OTP", current_code(phone_of(people.alice), steps_ahead=1))
    assert airlock("creds", grant_id) == ExitCode.CONFLICT  # shown once
    assert "already shown" in capsys.readouterr().err

    assert airlock("revoke", grant_id, "--reason", "done") == ExitCode.OK
    assert wait_until(lambda: not can_login(env["DATABASE_URL"]), 20)
    # The login is refused from the first step of revocation; the grant's row
    # says revoked once the role is dropped, a moment later.
    revoked = Grant.Status.REVOKED
    assert wait_until(lambda: Grant.objects.get(pk=grant_id).status == revoked, 10)


@pytest.mark.slow
def test_exec_runs_the_command_with_the_credential_and_revokes_after(
    airlock, live_server, people, pg_target, celery_worker, monkeypatch
):
    airlock.login(people.alice)
    monkeypatch.setenv("AIRLOCK_OTP", current_code(phone_of(people.alice)))
    # The command connects with libpq's PG* variables only, then exits 7.
    script = "import psycopg; psycopg.connect('').execute('SELECT 1'); raise SystemExit(7)"
    thread, result = in_background(
        airlock, "exec", "test-db", "--for", "5m", "--reason", "INC-8",
        "--", sys.executable, "-c", script,
    )  # fmt: skip
    request = pending_request_of(people.alice)
    assert approve_via_api(live_server, people.bob, request.id).status_code == 200
    thread.join(60)
    assert result["code"] == 7
    grant = Grant.objects.get(request=request)
    assert wait_until(lambda: Grant.objects.get(pk=grant.pk).status == Grant.Status.REVOKED, 20)
    assert "airlock exec finished" in Grant.objects.get(pk=grant.pk).end_reason


def test_a_denied_request_exits_4_with_the_reason(airlock, live_server, people, capsys):
    airlock.login(people.alice)
    thread, result = in_background(
        airlock, "request", "test-db", "--for", "10m", "--reason", "INC-9", "--wait"
    )
    request = pending_request_of(people.alice)
    denied = approve_via_api(live_server, people.bob, request.id, "deny", reason="use the replica")
    assert denied.status_code == 200
    thread.join(30)
    assert result["code"] == ExitCode.REFUSED
    assert "request denied: use the replica" in capsys.readouterr().err


def test_waiting_too_long_exits_5_and_exec_withdraws_its_request(airlock, people, capsys):
    airlock.login(people.alice)
    code = airlock("request", "test-db", "--for", "10m", "--reason", "INC-1", "--wait",
                   "--timeout", "0.5")  # fmt: skip
    assert code == ExitCode.TIMEOUT
    assert "gave up waiting for a decision" in capsys.readouterr().err
    assert AccessRequest.objects.get().status == "pending"  # `request` leaves it to approvers
    AccessRequest.objects.update(status="cancelled")
    code = airlock("exec", "test-db", "--for", "10m", "--reason", "INC-1", "--timeout", "0.5",
                   "--", "true")  # fmt: skip
    assert code == ExitCode.TIMEOUT
    assert AccessRequest.objects.latest("created_at").status == "cancelled"


def test_clear_errors_and_exit_codes(airlock, people, capsys):
    assert airlock("status") == ExitCode.UNAUTHENTICATED
    assert "not logged in" in capsys.readouterr().err
    assert airlock.login(people.alice, days=1) == ExitCode.OK
    assert airlock("request", "test-db", "--for", "9h", "--reason", "x") == ExitCode.ERROR
    assert "duration: at most 2h" in capsys.readouterr().err
    assert airlock("request", "other-db", "--for", "1h") == ExitCode.ERROR
    assert "reason: a reason is required" in capsys.readouterr().err
    assert airlock("revoke", "8d5e1f0c-0000-4000-8000-000000000000") == ExitCode.NOT_FOUND
    assert airlock("exec", "test-db", "--reason", "x") == ExitCode.USAGE


def test_an_expired_token_exits_3_and_says_so(airlock, people, capsys):
    from django.utils import timezone

    from accounts.models import ApiToken

    airlock.login(people.alice)
    ApiToken.objects.update(expires_at=timezone.now())
    assert airlock("profiles") == ExitCode.UNAUTHENTICATED
    assert "expired" in capsys.readouterr().err


def test_a_bad_token_is_not_saved(airlock, live_server, db, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("airlock_not-a-real-token\n"))
    code = airlock("login", "--url", live_server.url, "--token-stdin")
    assert code == ExitCode.UNAUTHENTICATED
    assert not (tmp_path / "config" / "config.json").exists()


def test_an_unreachable_server_is_named(airlock, db, monkeypatch, capsys):
    monkeypatch.setenv("AIRLOCK_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AIRLOCK_TOKEN", "airlock_x")
    assert airlock("profiles") == ExitCode.ERROR
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kind", "credential", "output", "expected"),
    [
        ("aws", {"access_key_id": "AK", "secret_access_key": "s'k", "session_token": "t",
                 "region": "eu-west-1"}, "env", "export AWS_SECRET_ACCESS_KEY='s'\"'\"'k'"),
        ("vault_token", {"address": "http://v", "token": "s.x"}, "env", "export VAULT_TOKEN=s.x"),
        ("postgres", {"host": "h", "port": 5432, "dbname": "d", "user": "u", "password": "p@ss"},
         "psql", "postgresql://u:p%40ss@h:5432/d"),
        ("vault_token", {"address": "http://v", "token": "s.x"}, "json", '"token": "s.x"'),
    ],
)  # fmt: skip
def test_credential_formats(kind, credential, output, expected):
    assert expected in cli.format_credential(kind, credential, output)


def test_psql_format_is_for_postgres_only():
    with pytest.raises(cli.CliError, match="for PostgreSQL roles"):
        cli.format_credential("aws", {}, "psql")


@pytest.mark.slow
def test_extend_waits_for_the_new_credential(
    airlock, people, submit, step_up, vault, pg_target, celery_worker, capsys
):
    from tests.support.grants import active_grant

    grant = active_grant(people, submit, step_up, slug="vault-token")  # extends by policy
    airlock.login(people.alice)
    code = airlock("extend", str(grant.pk), "--for", "30m", "--reason", "more", "--wait",
                   "--timeout", "30")  # fmt: skip
    assert code == ExitCode.OK
    assert "extended until" in capsys.readouterr().err
    grant.refresh_from_db()
    assert grant.extensions == 1 and grant.secret is not None


def test_audit_export_is_sealed_and_verifies_offline(airlock, people, submit, tmp_path, capsys):
    from audit.manifest import verify_export

    submit(people.alice)
    assert airlock.login(people.dave) == ExitCode.OK
    output = tmp_path / "audit.jsonl"
    assert airlock("audit-export", "--format", "jsonl", "--output", str(output)) == ExitCode.OK
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    report = verify_export(output)
    assert report.intact and report.count >= 2, report.error
    # One byte changed: the HMAC and the chain both say so.
    text = output.read_text().replace("investigating", "investigatinG", 1)
    output.write_text(text)
    assert not verify_export(output).intact
    # Not an auditor: refused with the reason.
    airlock.login(people.alice)
    assert airlock("audit-export", "--output", str(tmp_path / "x")) == ExitCode.REFUSED
    assert "auditors only" in capsys.readouterr().err


def test_request_without_for_asks_for_the_profiles_default(airlock, people, capsys):
    from audit import trail
    from broker.catalog.load import parse_catalog
    from broker.lifecycle import catalog_sync
    from tests.support.catalogs import TEST_CATALOG

    catalog = TEST_CATALOG.replace("default_duration: 1h", "default_duration: 45m", 1)
    catalog_sync(catalog=parse_catalog(catalog.encode()), info=trail.SYSTEM)
    airlock.login(people.alice)
    assert airlock("profiles") == ExitCode.OK
    assert "45m by default" in capsys.readouterr().out
    assert airlock("request", "test-db", "--reason", "INC-2") == ExitCode.OK
    assert "(45m)" in capsys.readouterr().err
    assert AccessRequest.objects.get().duration.total_seconds() == 45 * 60


def test_cancel_withdraws_my_pending_request(airlock, people, submit, capsys):
    mine = submit(people.alice)
    airlock.login(people.bob)  # an approver sees it, but it is not his to withdraw
    assert airlock("cancel", str(mine.pk)) == ExitCode.REFUSED
    assert "only the requester" in capsys.readouterr().err
    airlock.login(people.alice)
    assert airlock("cancel", str(mine.pk), "--reason", "fixed it") == ExitCode.OK
    assert f"request {mine.pk} is cancelled" in capsys.readouterr().err
    mine.refresh_from_db()
    assert mine.status == AccessRequest.Status.CANCELLED and mine.decision_reason == "fixed it"
    assert airlock("cancel", str(mine.pk)) == ExitCode.CONFLICT
    assert "already cancelled" in capsys.readouterr().err


def test_revoke_given_a_request_id_names_the_grant_or_the_command(airlock, people, submit, capsys):
    pending = submit(people.alice)
    airlock.login(people.alice)
    assert airlock("revoke", str(pending.pk)) == ExitCode.NOT_FOUND
    assert f"still waiting for approval: airlock cancel {pending.pk}" in capsys.readouterr().err
    granted = submit(people.alice, slug="vault-token")
    grant = Grant.objects.create(
        request=granted, duration=granted.duration, created_at=granted.created_at
    )
    assert airlock("revoke", str(granted.pk)) == ExitCode.NOT_FOUND
    assert f"its grant is {grant.pk}: airlock revoke {grant.pk}" in capsys.readouterr().err
    assert airlock("revoke", "8d5e1f0c-0000-4000-8000-000000000000") == ExitCode.NOT_FOUND
    assert "see `airlock status`" in capsys.readouterr().err
