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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from broker.models import AuditChainHead, AuditEvent, Source

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


def event_payload(event: AuditEvent) -> dict[str, Any]:
    """The fields an event's hash covers, as plain JSON values (also what exports carry)."""
    payload: dict[str, Any] = {name: getattr(event, name) for name in HASHED_FIELDS}
    payload["created_at"] = utc_iso(event.created_at)
    return payload


def payload_hash(payload: dict[str, Any]) -> str:
    hashed = {name: payload[name] for name in HASHED_FIELDS}
    canonical = json.dumps(hashed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def event_hash(event: AuditEvent) -> str:
    return payload_hash(event_payload(event))


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
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record must run inside the transaction of the change")
    head = _lock_head()
    event = AuditEvent(
        seq=head.seq + 1,
        created_at=timezone.now(),
        actor_id=actor.pk if actor is not None else None,
        actor=actor.get_username() if actor is not None else "",
        action=action,
        target_type=target._meta.model_name if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        source=info.source,
        ip=info.ip,
        user_agent=info.user_agent[:300],
        data=data or {},
        prev_hash=head.hash,
    )
    event.hash = event_hash(event)
    event.save(force_insert=True)
    head.seq, head.hash = event.seq, event.hash
    head.save(update_fields=["seq", "hash"])
    return event


def _lock_head() -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        # The first event ever. Concurrent first writers all try the insert; the
        # database keeps one and the others wait on it, then lock it. (If someone
        # deleted the head of a non-empty chain, the next event's seq collides
        # with event #1 and the write fails: closed, and verify_audit says why.)
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(pk=1, seq=0, hash=GENESIS_HASH)], ignore_conflicts=True
        )
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    return head


@dataclass(frozen=True)
class ChainReport:
    count: int
    head_hash: str
    error: str | None = None

    @property
    def intact(self) -> bool:
        return self.error is None


def verify_chain() -> ChainReport:
    """Walk the stored chain in order and report the first broken link."""
    events = ({**event_payload(e), "hash": e.hash} for e in _events_in_order())
    report = check_links(events, first_seq=1, prev_hash=GENESIS_HASH)
    if not report.intact:
        return report
    head = AuditChainHead.objects.filter(pk=1).first() or AuditChainHead(seq=0, hash=GENESIS_HASH)
    if (head.seq, head.hash) != (report.count, report.head_hash):
        return ChainReport(
            report.count,
            report.head_hash,
            f"the chain ends at event #{report.count} but its head records event #{head.seq}: "
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


def _events_in_order() -> Iterator[AuditEvent]:
    return AuditEvent.objects.order_by("seq").iterator(chunk_size=2000)


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
