"""The audit trail: hash chain, tamper detection, append-only, no forks, fail closed."""

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction
from django.db.utils import DatabaseError

from audit import trail
from audit.models import AuditChainHead, AuditEvent
from broker.models import AccessRequest
from tests.support.trail import write_events


def raw(sql: str, params=()) -> None:
    """Tamper with the table directly, as an attacker with SQL access would."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE broker_auditevent DISABLE TRIGGER audit_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE broker_auditevent ENABLE TRIGGER audit_append_only")


def verify_error() -> str:
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit")
    return str(caught.value)


def test_intact_chain_verifies_with_count(db, capsys):
    write_events(5)
    call_command("verify_audit")
    assert "audit chain intact: 5 event(s)" in capsys.readouterr().out


def test_each_event_links_to_the_previous_one(db):
    write_events(3)
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == trail.GENESIS_HASH
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    assert all(trail.event_hash(e) == e.hash for e in events)


def test_a_changed_event_is_named(db):
    write_events(5)
    raw("UPDATE broker_auditevent SET reason = 'nothing to see' WHERE seq = 3")
    assert "event #3 (test.event2) was changed" in verify_error()


def test_a_deleted_event_is_named(db):
    write_events(5)
    raw("DELETE FROM broker_auditevent WHERE seq = 2")
    assert "event #2 is missing (deleted or moved) before event #3" in verify_error()


def test_events_deleted_from_the_end_are_noticed(db):
    write_events(5)
    raw("DELETE FROM broker_auditevent WHERE seq >= 4")
    assert "events were deleted from the end" in verify_error()


def test_reordered_events_are_named(db):
    write_events(5)
    raw("UPDATE broker_auditevent SET seq = -1 WHERE seq = 2")
    raw("UPDATE broker_auditevent SET seq = 2 WHERE seq = 3")
    raw("UPDATE broker_auditevent SET seq = 3 WHERE seq = -1")
    assert "event #2 does not follow event #1" in verify_error()


def test_an_inserted_event_is_named(db):
    write_events(4)
    # Make room at #3 (in two steps: the unique constraint is checked per row).
    raw("UPDATE broker_auditevent SET seq = -(seq + 1) WHERE seq >= 3")
    raw("UPDATE broker_auditevent SET seq = -seq WHERE seq < 0")
    forged = AuditEvent.objects.get(seq=2)
    # A well-formed event that links to #2 correctly; the old #3 no longer follows it.
    forged.pk, forged.seq, forged.action, forged.prev_hash = None, 3, "test.forged", forged.hash
    forged.hash = trail.event_hash(forged)
    forged.save()
    assert "event #4 does not follow event #3" in verify_error()


def test_the_database_refuses_update_and_delete(db):
    write_events(1)
    for statement in (
        "UPDATE broker_auditevent SET reason = 'x'",
        "DELETE FROM broker_auditevent",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert AuditEvent.objects.get().reason == "r0"


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    threads, per_thread = 8, 25
    barrier = threading.Barrier(threads)

    def writer():
        try:
            barrier.wait()
            write_events(per_thread)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=writer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    report = trail.verify_chain()
    assert report.intact, report.error
    assert report.count == threads * per_thread
    assert AuditChainHead.objects.get().seq == threads * per_thread


@pytest.mark.django_db(transaction=True)
def test_record_outside_a_transaction_is_refused():
    # An event written on its own could describe a change that then rolls back.
    with pytest.raises(RuntimeError, match="inside the transaction"):
        trail.record(action="test.alone", info=trail.SYSTEM)
    assert not AuditEvent.objects.exists()


def test_a_failing_audit_write_stops_the_action(people, submit, monkeypatch):
    """Fail closed: no audit event, no state change."""

    def broken(*args, **kwargs):
        raise DatabaseError("audit storage unavailable")

    monkeypatch.setattr(trail, "record", broken)
    with pytest.raises(DatabaseError):
        submit(people.alice)
    assert not AccessRequest.objects.exists()
