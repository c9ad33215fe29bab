"""The hash-chained, append-only audit trail.

Each event stores the sha256 of its canonical JSON, which includes the hash of
the event before it; changing, deleting, reordering or inserting an event breaks
the chain at that point. Writers lock the single chain-head row, so concurrent
transactions append one after the other and the chain never forks. `record`
must run inside the transaction of the change it describes: if it fails, the
change rolls back with it (fail closed).
"""

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection as db_connection
from django.db import models, transaction
from django.db.models import QuerySet
from django.dispatch import Signal
from django.http import HttpRequest
from django.utils import timezone

from audit.models import AuditChainHead, AuditEvent, Source

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "seq", "created_at", "actor_id", "actor", "action", "target_type", "target_id",
    "from_status", "to_status", "reason", "source", "ip", "user_agent", "data", "prev_hash",
)  # fmt: skip


@dataclass(frozen=True)
class RequestInfo:
    """Where an action came from: channel, client address and user agent."""

    source: str = Source.SYSTEM
    ip: str | None = None
    user_agent: str = ""


SYSTEM = RequestInfo()


# Set on a request by a surface other than the web pages and the API (Slack,
# SCIM), naming its channel (a Source value) for the changes made while serving it.
AUDIT_SOURCE_ATTRIBUTE = "airlock_audit_source"


def request_info(request: HttpRequest | None, source: str = Source.WEB) -> RequestInfo:
    """Where a web request or API call came from (SYSTEM when there is none, as for
    a sign-in signal sent outside a request)."""
    if request is None:
        return SYSTEM
    return RequestInfo(
        source=source,
        ip=request.META.get("REMOTE_ADDR"),
        user_agent=request.headers.get("user-agent", ""),
    )


def event_payload(event: AuditEvent) -> dict[str, Any]:
    """The fields an event's hash covers, as plain JSON values (also what exports carry)."""
    payload: dict[str, Any] = {name: getattr(event, name) for name in HASHED_FIELDS}
    payload["created_at"] = utc_iso(event.created_at)
    return payload


RECORD_FIELDS = (*HASHED_FIELDS, "hash")


def event_records(events: QuerySet[AuditEvent]) -> Iterator[dict[str, Any]]:
    """Stored events as the dicts exports and chain checks take: every hashed field
    as the chain hashed it, plus the hash. Read as plain rows, streamed: building
    model instances was over half the cost of an export (bench/README.md)."""
    for row in events.values_list(*RECORD_FIELDS).iterator(chunk_size=5000):
        record = dict(zip(RECORD_FIELDS, row, strict=True))
        record["created_at"] = utc_iso(record["created_at"])
        yield record


def payload_hash(payload: dict[str, Any]) -> str:
    hashed = {name: payload[name] for name in HASHED_FIELDS}
    canonical = json.dumps(hashed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def event_hash(event: AuditEvent) -> str:
    return payload_hash(event_payload(event))


# Every change in Airlock waits on the head's lock, so what runs under it is
# plain SQL: the ORM's query building held it about three times longer
# (bench/README.md, audit appends). Values still go through each field's own
# conversion for the database.
_quote = db_connection.ops.quote_name
HEAD_TABLE = _quote(AuditChainHead._meta.db_table)
FIELDS = [AuditEvent._meta.get_field(name) for name in RECORD_FIELDS]
COLUMNS = ", ".join(_quote(field.column) for field in FIELDS)
INSERT_EVENT = (
    f"INSERT INTO {_quote(AuditEvent._meta.db_table)} ({COLUMNS}) "  # noqa: S608  # nosec B608  # our own names
    f"VALUES ({', '.join(['%s'] * len(FIELDS))}) RETURNING id"
)
MOVE_HEAD = f"UPDATE {HEAD_TABLE} SET seq = %s, hash = %s WHERE id = 1"  # noqa: S608  # nosec B608
# Sent for each event appended, inside its transaction (the Slack notifier listens).
event_recorded = Signal()


def record(
    *,
    action: str,
    info: RequestInfo,
    actor=None,
    target: models.Model | None = None,
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("trail.record must run inside the transaction of the change")
    with connection.cursor() as cursor:
        head_seq, head_hash = _lock_head(cursor)
        event = AuditEvent(
            seq=head_seq + 1,
            created_at=timezone.now(),
            actor_id=actor.pk if actor is not None else None,
            actor=actor.get_username() if actor is not None else "",
            action=str(action),  # an Action member is stored as its plain value
            target_type=target._meta.model_name if target is not None else "",
            target_id=str(target.pk) if target is not None else "",
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            source=info.source,
            ip=info.ip,
            user_agent=info.user_agent[:300],
            data=data or {},
            prev_hash=head_hash,
        )
        event.hash = event_hash(event)
        cursor.execute(
            INSERT_EVENT,
            [f.get_db_prep_save(getattr(event, f.attname), connection) for f in FIELDS],
        )
        event.pk = cursor.fetchone()[0]
        cursor.execute(MOVE_HEAD, [event.seq, event.hash])
    event._state.adding, event._state.db = False, connection.alias  # as if saved by the ORM
    event_recorded.send(sender=AuditEvent, event=event)
    return event


def _lock_head(cursor) -> tuple[int, str]:
    lock = " FOR UPDATE" if cursor.db.features.has_select_for_update else ""
    select = f"SELECT seq, hash FROM {HEAD_TABLE} WHERE id = 1{lock}"  # noqa: S608  # nosec B608
    cursor.execute(select)
    row = cursor.fetchone()
    if row is None:
        # The first event ever. Concurrent first writers all try the insert; the
        # database keeps one and the others wait on it, then lock it. (If someone
        # deleted the head of a non-empty chain, the next event's seq collides
        # with event #1 and the write fails: closed, and verify_audit says why.)
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(pk=1, seq=0, hash=GENESIS_HASH)], ignore_conflicts=True
        )
        cursor.execute(select)
        row = cursor.fetchone()
    return row[0], row[1]


@dataclass(frozen=True)
class ChainReport:
    count: int
    head_hash: str
    error: str | None = None
    anchors: int = 0  # how many anchors it was checked against
    anchored_through: int = 0  # the newest anchored event

    @property
    def intact(self) -> bool:
        return self.error is None


def verify_chain(
    watch: Callable[[Iterator[dict[str, Any]]], Iterator[dict[str, Any]]] | None = None,
    *,
    first_seq: int = 1,
    prev_hash: str = GENESIS_HASH,
) -> ChainReport:
    """Walk the stored chain in order and report the first broken link: from event
    #1, or from `first_seq` following `prev_hash` where the archive ends
    (audit/archive.py). `watch` sees every event on the way (the anchors' check)."""
    events = event_records(AuditEvent.objects.filter(seq__gte=first_seq).order_by("seq"))
    report = check_links(
        watch(events) if watch else events, first_seq=first_seq, prev_hash=prev_hash
    )
    if not report.intact:
        return report
    end = first_seq - 1 + report.count
    head = AuditChainHead.objects.filter(pk=1).first() or AuditChainHead(seq=0, hash=GENESIS_HASH)
    if (head.seq, head.hash) != (end, report.head_hash):
        return ChainReport(
            report.count,
            report.head_hash,
            f"the chain ends at event #{end} but its head records event #{head.seq}: "
            "events were deleted from the end",
        )
    return report


def check_links(events: Iterable[dict[str, Any]], *, first_seq: int, prev_hash: str) -> ChainReport:
    """Check that events (as dicts with their `hash`) form an unbroken chain from
    `first_seq`, the first one following `prev_hash`. Used for the database and
    for exported files alike."""
    expected_seq, count = first_seq, 0
    for event in events:
        seq = event["seq"]
        if seq != expected_seq:
            if seq > expected_seq:
                missing = (
                    f"#{expected_seq}"
                    if seq == expected_seq + 1
                    else f"#{expected_seq} to #{seq - 1}"
                )
                error = f"event {missing} is missing (deleted or moved) before event #{seq}"
            else:
                error = f"event #{seq} is out of sequence after #{expected_seq - 1}"
            return ChainReport(count, prev_hash, error)
        if event["prev_hash"] != prev_hash:
            return ChainReport(
                count,
                prev_hash,
                f"event #{seq} does not follow event #{seq - 1} "
                "(events reordered, inserted or replaced)",
            )
        if payload_hash(event) != event["hash"]:
            return ChainReport(
                count,
                prev_hash,
                f"event #{seq} ({event['action']}) was changed after it was written",
            )
        prev_hash, expected_seq, count = event["hash"], expected_seq + 1, count + 1
    return ChainReport(count, prev_hash)


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
