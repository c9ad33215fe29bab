"""`airlock lock`, `airlock locks` and `airlock unlock` against a live server with a
real worker: carol locks alice from her terminal and alice's database login dies
at the source; lifting takes erin too; alice and bad input are refused clearly."""

import pytest

from airlock_cli.client import ExitCode
from broker.models import Lock
from tests.support.grants import credential_dsn
from tests.support.locks import lock_behind_its_back
from tests.support.people import current_code, phone_of
from tests.support.pg_target import can_login, wait_until
from tests.test_grant_lifecycle_e2e import approved_and_active

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def as_user(airlock, monkeypatch, user, steps_ahead: int = 0) -> None:
    airlock.login(user)
    monkeypatch.setenv("AIRLOCK_OTP", current_code(phone_of(user), steps_ahead))


def test_carol_locks_alice_from_the_terminal(
    airlock, people, submit, step_up, pg_target, celery_worker, monkeypatch, capsys
):
    _, credential = approved_and_active(people, submit, step_up, "test-db", "20m")
    assert can_login(credential_dsn(credential))

    as_user(airlock, monkeypatch, people.carol)
    code = airlock("lock", "user", "alice", "--reason", "laptop stolen", "--for", "4h")
    assert code == ExitCode.OK, capsys.readouterr().err
    output = capsys.readouterr()
    lock_id = output.out.strip()
    assert "locked user alice until" in output.err
    assert wait_until(lambda: not can_login(credential_dsn(credential)), 20)

    assert airlock("locks") == ExitCode.OK
    assert f"{lock_id}  user    alice" in capsys.readouterr().out
    assert airlock("locks", "--targets") == ExitCode.OK
    assert "postgres:AIRLOCK_PG_DSN_TEST" in capsys.readouterr().out

    monkeypatch.setenv("AIRLOCK_OTP", current_code(phone_of(people.carol), 1))
    assert airlock("unlock", lock_id, "--reason", "wiped") == ExitCode.OK
    assert "a second person of the security role" in capsys.readouterr().err
    as_user(airlock, monkeypatch, people.erin)
    assert airlock("unlock", lock_id) == ExitCode.OK
    assert "lifted the lock on user alice" in capsys.readouterr().err
    assert Lock.objects.get().ended_by == people.erin


def test_refusals_are_clear(airlock, people, catalog, monkeypatch, capsys):
    as_user(airlock, monkeypatch, people.alice)
    assert airlock("lock", "user", "bob", "--reason", "x") == ExitCode.REFUSED
    assert "the security role only" in capsys.readouterr().err
    as_user(airlock, monkeypatch, people.carol)
    assert airlock("lock", "user", "mallory", "--reason", "x") == ExitCode.ERROR
    assert "subject: no user 'mallory'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        airlock("lock", "user", "bob")  # no reason
    assert usage.value.code == ExitCode.USAGE
    assert not Lock.objects.exists()


def test_what_the_server_says_cannot_drive_the_terminal(
    airlock, people, catalog, monkeypatch, capsys
):
    # A reason from before such reasons were refused, as the API may still return it.
    evil = "prod down\x1b[2K\x1b[1A\x1b]0;all clear\x07\u202eevil"
    lock_behind_its_back(people.carol, scope="user", user=people.alice, reason=evil)
    as_user(airlock, monkeypatch, people.carol)
    assert airlock("locks") == ExitCode.OK
    out = capsys.readouterr().out
    assert "prod down\\x1b[2K" in out
    assert not {"\x1b", "\x07", "\u202e"} & set(out)
