"""Audit events written for tests of the trail itself."""

from django.db import connection, transaction

from audit import trail
from audit.trail import payload_hash


def write_events(n: int) -> None:
    for i in range(n):
        with transaction.atomic():
            trail.record(action=f"test.event{i}", info=trail.SYSTEM, reason=f"r{i}")


def as_owner(*statements: str, params=None) -> None:
    """SQL as the tables' owner does it: the guards switched off first."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE broker_auditevent DISABLE TRIGGER USER")
        cursor.execute("ALTER TABLE broker_auditchainhead DISABLE TRIGGER USER")
        for statement in statements:
            cursor.execute(statement, params)


def rewrite_from(seq: int, reason: str) -> None:
    """Change event #seq and recompute every hash after it, and the head."""
    as_owner(f"UPDATE broker_auditevent SET reason = %s WHERE seq = {seq}", params=[reason])
    prev = trail.GENESIS_HASH if seq == 1 else trail.AuditEvent.objects.get(seq=seq - 1).hash
    for event in trail.AuditEvent.objects.filter(seq__gte=seq).order_by("seq"):
        event.prev_hash = prev
        new_hash = payload_hash(trail.event_payload(event))
        as_owner(
            "UPDATE broker_auditevent SET prev_hash = %s, hash = %s WHERE seq = %s",
            params=[prev, new_hash, event.seq],
        )
        prev = new_hash
    head_seq = trail.AuditEvent.objects.latest("seq").seq
    as_owner("UPDATE broker_auditchainhead SET seq = %s, hash = %s", params=[head_seq, prev])
