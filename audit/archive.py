"""Retention: events older than the retention period leave the hot table for the
witness (audit/witness.py), as segments each sealed by a signed manifest, through
one audited path that only the tables' owner can take. Afterwards the chain is
verified across the archive and the hot table as one: the archive's segments
from event #1 on, each following the one before, then the hot table following
the last segment.

A segment is an export (audit/manifest.py) of events #first to #last, in JSON
Lines: `archive/<first>-<last>.jsonl` beside its `.manifest.json`.
"""

import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.db import connection, transaction
from django.db.models import Max, Min

from audit import trail
from audit.actions import Action
from audit.export import Record
from audit.manifest import (
    ExportRange,
    SealedExport,
    manifest_bytes,
    manifest_path,
    read_manifest,
    sealing_keys,
    verify_export,
)
from audit.models import AuditEvent
from audit.signing import Keyring
from audit.trail import GENESIS_HASH, ChainReport, verify_chain
from audit.witness import Witness, WitnessError

ARCHIVE_PREFIX = "archive/"
MANIFEST_SUFFIX = ".manifest.json"
# Segments are built in memory: this many events is about 50 MB of JSON Lines.
SEGMENT_EVENTS = 100_000
# Two archivers at once would write overlapping segments; the second waits.
ARCHIVE_LOCK = 0x4149524C  # "AIRL"


def archive_before(before: datetime, witness: Witness, info: trail.RequestInfo) -> list[AuditEvent]:
    """Move every event created before `before` to the witness, segment by segment,
    each removed from the hot table only once it is stored, and each an
    `audit.archived` event. Runs as the tables' owner (the trigger lets nobody
    else delete). Returns those events; WitnessError when the witness refuses."""
    signer, hmac_key = sealing_keys()
    if signer is None:
        raise WitnessError("archives are signed: set AIRLOCK_AUDIT_SIGNING_KEY (or _FILE)")
    recorded = []
    with _archive_lock():
        last_due = AuditEvent.objects.filter(created_at__lt=before).aggregate(Max("seq"))[
            "seq__max"
        ]
        while last_due is not None:
            first = AuditEvent.objects.aggregate(Min("seq"))["seq__min"]
            if first is None or first > last_due:
                break
            through = min(last_due, first + SEGMENT_EVENTS - 1)
            export = SealedExport(ExportRange(None, None, through), "jsonl", (signer, hmac_key))
            body = b"".join(export.chunks())
            manifest = export.manifest()
            key = f"{ARCHIVE_PREFIX}{manifest.first_seq:020d}-{manifest.last_seq:020d}.jsonl"
            witness.put(key, body, "application/x-ndjson")
            witness.put(key + MANIFEST_SUFFIX, manifest_bytes(manifest), "application/json")
            recorded.append(_remove_archived(manifest, f"s3://{witness.bucket}/{key}", info))
    return recorded


@contextmanager
def _archive_lock() -> Iterator[None]:
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [ARCHIVE_LOCK])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [ARCHIVE_LOCK])


def _remove_archived(manifest, location: str, info: trail.RequestInfo) -> AuditEvent:
    last_created_at = AuditEvent.objects.get(seq=manifest.last_seq).created_at
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # The trigger lets the owner delete up to here, in this transaction only.
                cursor.execute(
                    "SELECT set_config('airlock.archived_through', %s, true)",
                    [str(manifest.last_seq)],
                )
        AuditEvent.objects.filter(seq__lte=manifest.last_seq)._raw_delete(connection.alias)
        return trail.record(
            action=Action.AUDIT_ARCHIVED,
            info=info,
            data={
                "first_seq": manifest.first_seq,
                "last_seq": manifest.last_seq,
                "last_hash": manifest.last_hash,
                "last_created_at": trail.utc_iso(last_created_at),
                "count": manifest.count,
                "file_sha256": manifest.file_sha256,
                "location": location,
            },
        )


@dataclass(frozen=True)
class ArchiveReport:
    """The archive's part of a chain walk: where the hot table must go on."""

    count: int
    next_seq: int
    prev_hash: str
    error: str | None = None


def verify_archive(
    witness: Witness,
    keyring: Keyring,
    watch: Callable[[Iterator[Record]], Iterator[Record]] | None = None,
) -> ArchiveReport:
    """Check every archived segment, in order, from event #1: its manifest's
    signature, its file, its chain, and that it follows the segment before."""
    stored: dict[str, list[bytes]] = defaultdict(list)
    for item in witness.versions(ARCHIVE_PREFIX):
        stored[item.key].append(item.body)
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    with tempfile.TemporaryDirectory() as folder:
        segments = sorted(key for key in stored if not key.endswith(MANIFEST_SUFFIX))
        for key in segments:
            bodies, manifests = stored[key], stored.get(key + MANIFEST_SUFFIX, [])
            if len(set(bodies)) != 1 or len(set(manifests)) != 1:
                problem = "has no manifest" if not manifests else "was written twice, differently"
                return ArchiveReport(count, expected_seq, prev_hash, f"archive {key} {problem}")
            path = Path(folder) / Path(key).name
            path.write_bytes(bodies[0])
            manifest_path(path).write_bytes(manifests[0])
            manifest = read_manifest(manifest_path(path))
            if (manifest.first_seq, manifest.first_prev_hash) != (expected_seq, prev_hash):
                return ArchiveReport(
                    count,
                    expected_seq,
                    prev_hash,
                    f"archive {key} does not follow what comes before it (event "
                    f"#{expected_seq} expected): a segment is missing",
                )
            report = verify_export(path, keyring=keyring, watch=watch)
            if not report.intact:
                return ArchiveReport(
                    count + report.count, expected_seq, prev_hash, f"archive {key}: {report.error}"
                )
            expected_seq, prev_hash = manifest.last_seq + 1, manifest.last_hash
            count += report.count
    return ArchiveReport(count, expected_seq, prev_hash)


def verify_whole_chain(
    witness: Witness | None,
    keyring: Keyring,
    watch: Callable[[Iterator[Record]], Iterator[Record]] | None = None,
) -> ChainReport:
    """The archive (when there is a witness), then the hot table following it."""
    if witness is None:
        return verify_chain(watch=watch)
    archived = verify_archive(witness, keyring, watch)
    if archived.error:
        return ChainReport(archived.count, archived.prev_hash, archived.error)
    hot = verify_chain(watch=watch, first_seq=archived.next_seq, prev_hash=archived.prev_hash)
    return ChainReport(archived.count + hot.count, hot.head_hash, hot.error)
