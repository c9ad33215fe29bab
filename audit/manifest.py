"""Export manifests: what an exported file holds, signed, so the file can be
checked offline, without the database.

A manifest states a range: every event created from `since` to `until` (either
may be open) among the chain's first `through_seq` events, which is the chain's
head when the export was made or the point an API client pinned it to. The seal
covers that statement and the file's sha256, so neither the file nor the range
it claims can change: a file cannot leave out events of the range it states and
still verify.

Version 3 is signed with Ed25519 (audit/signing.py), which anyone holding the
public key can check and nobody without the private key can forge; it is also
sealed with an HMAC where that key is configured, as version 2 was. Whoever
holds the HMAC key can write any manifest the HMAC check accepts.
"""

import hashlib
import hmac
import io
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from audit import signing
from audit.actions import Action
from audit.export import FORMATS, Record, export_records, read_export
from audit.models import AuditChainHead, AuditEvent
from audit.signing import Keyring, Signer
from audit.trail import ChainReport, check_links, utc_iso
from lib.secrets import MissingSecret, read_secret

HMAC_KEY = "AIRLOCK_EXPORT_HMAC_KEY"
# Version 1 (no `version` field) sealed the file's bytes only, not the range it
# stated; version 2 is sealed with an HMAC only.
MANIFEST_VERSION = 3
READABLE_VERSIONS = (2, 3)
# Keeps the manifest's seal apart from any other use of the same key.
SEAL_CONTEXT = {2: b"airlock-export-manifest/2\n", 3: b"airlock-export-manifest/3\n"}
# What version 3 added; the seals themselves are not part of what they cover.
SIGNATURE_FIELDS = ("key_id", "signed_at", "signature")
SEALS = ("signature", "hmac_sha256")


def hmac_key() -> bytes:
    return read_secret(HMAC_KEY).encode()


def configured_hmac_key() -> bytes | None:
    key = read_secret(HMAC_KEY, required=False)
    return key.encode() if key else None


def chain_head_seq() -> int:
    """The last event's sequence number (0 for an empty chain): every event up to it
    is committed, as writers hold the head's lock until they commit."""
    head = AuditChainHead.objects.filter(pk=1).first()
    return head.seq if head else 0


@dataclass(frozen=True)
class ExportRange:
    """The events a sealed export holds: created from `since` to `until`, both
    inclusive and either open (None), among the first `through_seq` of the chain."""

    since: datetime | None
    until: datetime | None
    through_seq: int

    def archived_problem(self) -> str | None:
        """Why this range cannot be exported from the database: it reaches back into
        events `archive_audit` moved to the witness (a manifest would claim them)."""
        archived = AuditEvent.objects.filter(action=Action.AUDIT_ARCHIVED).order_by("-seq").first()
        if archived is None:
            return None
        stated = archived.data.get("last_created_at")
        last_created_at = datetime.fromisoformat(stated) if stated else None
        if self.since is not None and last_created_at and self.since > last_created_at:
            return None
        return (
            f"events up to #{archived.data['last_seq']} (created up to {last_created_at}) "
            "are archived in the witness bucket: start the range after that "
            "(verify_audit checks the archive)"
        )

    def events(self) -> QuerySet[AuditEvent]:
        events = AuditEvent.objects.filter(seq__lte=self.through_seq)
        if self.since:
            events = events.filter(created_at__gte=self.since)
        if self.until:
            events = events.filter(created_at__lte=self.until)
        return events.order_by("seq")


@dataclass
class Manifest:
    version: int
    format: str
    since: str  # an ISO date-time in UTC, as events' created_at; "" when open
    until: str
    through_seq: int
    count: int
    first_seq: int | None
    last_seq: int | None
    first_prev_hash: str | None  # the hash of event #first_seq - 1, which the file follows
    last_hash: str | None
    file_sha256: str
    key_id: str = ""  # the Ed25519 key that signed (version 3; "" when unsigned)
    signed_at: str = ""
    signature: str = ""
    hmac_sha256: str = ""  # "" when no HMAC key is configured (version 3)

    def as_dict(self) -> dict[str, Any]:
        stated = asdict(self)
        if self.version == 2:
            for name in SIGNATURE_FIELDS:
                del stated[name]
        return stated

    def statement(self) -> bytes:
        """Every field but the seals, canonically: what the signature and HMAC cover."""
        stated = {k: v for k, v in self.as_dict().items() if k not in SEALS}
        canonical = json.dumps(stated, sort_keys=True, separators=(",", ":"))
        return SEAL_CONTEXT[self.version] + canonical.encode()


def seal_of(manifest: Manifest, key: bytes) -> str:
    return hmac.new(key, manifest.statement(), hashlib.sha256).hexdigest()


def seal(manifest: Manifest, signer: Signer | None, key: bytes | None) -> None:
    """Sign `manifest` with the Ed25519 key and seal it with the HMAC key, each where
    configured."""
    if signer is not None:
        manifest.key_id, manifest.signed_at = signer.key_id, utc_iso(timezone.now())
        manifest.signature = signer.sign(manifest.statement())
    if key is not None:
        manifest.hmac_sha256 = seal_of(manifest, key)


def sealing_keys() -> tuple[Signer | None, bytes | None]:
    """The keys exports are sealed with; MissingSecret when there is neither."""
    signer, key = signing.signer(), configured_hmac_key()
    if signer is None and key is None:
        raise MissingSecret(
            f"set {signing.SIGNING_KEY} (or _FILE), an Ed25519 private key in PEM, "
            f"or {HMAC_KEY} (or _FILE)"
        )
    return signer, key


class SealedExport:
    """The bytes of an export, with its manifest once they have all been read.

    The command writes them to a file; the API streams them, and computes the
    same manifest again for a client that asks (rows never change, and the
    rendering is deterministic, so the same range gives the same bytes)."""

    def __init__(
        self,
        export_range: ExportRange,
        export_format: str,
        keys: tuple[Signer | None, bytes | None] | None = None,
    ):
        self.range, self.format = export_range, export_format
        # First: an export that cannot be sealed is refused early.
        self.signer, self.key = keys or sealing_keys()
        self.sha256 = hashlib.sha256()
        self.count: int = 0
        self.first: Record | None = None
        self.last: Record | None = None

    def _tracked(self, records: Iterable[Record]) -> Iterator[Record]:
        for record in records:
            self.count += 1
            self.first = self.first or record
            self.last = record
            yield record

    def chunks(self) -> Iterator[bytes]:
        rows, _, _ = FORMATS[self.format]
        for line in rows(self._tracked(export_records(self.range.events()))):
            chunk = line.encode()
            self.sha256.update(chunk)
            yield chunk

    def manifest(self) -> Manifest:
        first, last, stated = self.first, self.last, self.range
        manifest = Manifest(
            version=MANIFEST_VERSION,
            format=self.format,
            since=utc_iso(stated.since) if stated.since else "",
            until=utc_iso(stated.until) if stated.until else "",
            through_seq=stated.through_seq,
            count=self.count,
            first_seq=first["seq"] if first else None,
            last_seq=last["seq"] if last else None,
            first_prev_hash=first["prev_hash"] if first else None,
            last_hash=last["hash"] if last else None,
            file_sha256=self.sha256.hexdigest(),
        )
        seal(manifest, self.signer, self.key)
        return manifest


def stated_range(manifest: Manifest) -> str:
    """What a verified manifest proves its file holds, in words."""
    since = manifest.since or "the chain's start"
    until = manifest.until or "any time"
    return f"every event created from {since} to {until} among events #1 to #{manifest.through_seq}"


def manifest_path(export_path: str | Path) -> Path:
    return Path(f"{export_path}.manifest.json")


def manifest_bytes(manifest: Manifest) -> bytes:
    return (json.dumps(manifest.as_dict(), indent=2, sort_keys=True) + "\n").encode()


def write_manifest(export_path: str | Path, manifest: Manifest) -> Path:
    path = manifest_path(export_path)
    path.write_bytes(manifest_bytes(manifest))
    return path


def read_manifest(path: str | Path) -> Manifest:
    """ValueError names a manifest this version cannot check."""
    return parse_manifest(Path(path).read_text())


def parse_manifest(text: str | bytes) -> Manifest:
    """A manifest's text (as `read_manifest` reads it, from an evidence pack too)."""
    stated: dict[str, Any] = json.loads(text)
    if not isinstance(stated, dict):
        raise ValueError("the manifest is not a JSON object")
    if "version" not in stated:
        raise ValueError(
            "the manifest was written by an older Airlock: it seals the file but does "
            "not seal the range it states; export the range again"
        )
    version = stated["version"]
    expected = {f.name for f in fields(Manifest)}
    if version == 2:
        expected -= set(SIGNATURE_FIELDS)
    if version not in READABLE_VERSIONS or set(stated) != expected:
        raise ValueError(f"not a version {' or '.join(map(str, READABLE_VERSIONS))} manifest")
    return Manifest(**stated)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as raw:
        for chunk in iter(lambda: raw.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def seal_problem(manifest: Manifest, keyring: Keyring | None) -> str | None:
    """What is wrong with the manifest's seal: its signature when public keys are
    given, else its HMAC. ValueError/MissingSecret when it cannot be checked so."""
    if keyring is not None:
        problem = signing.check_signature(
            keyring,
            manifest.statement(),
            key_id=manifest.key_id if manifest.version >= 3 else "",
            signature=manifest.signature,
            signed_at=manifest.signed_at,
        )
        return f"the manifest cannot be trusted: {problem}" if problem else None
    if not manifest.hmac_sha256:
        raise ValueError(
            f"the manifest is signed with key {manifest.key_id}, not sealed with an HMAC: "
            "check it with --public-key"
        )
    if not hmac.compare_digest(seal_of(manifest, hmac_key()), manifest.hmac_sha256):
        return (
            "the manifest's HMAC does not match: what it states was changed after "
            "export (or the key differs)"
        )
    return None


# How a check opens an export's text again (a file, or bytes held in memory).
OpenLines = Callable[[], AbstractContextManager[Iterable[str]]]
Watch = Callable[[Iterator[Record]], Iterator[Record]]


def verify_export(
    export_path: str | Path,
    manifest_file: str | Path | None = None,
    keyring: Keyring | None = None,
    watch: Watch | None = None,
) -> ChainReport:
    """Check a manifest's seal (its signature with `keyring`, else its HMAC), the file
    against it, then each event against the chain and the range the manifest states.
    The first problem wins, but a changed file or manifest also says where the
    file's chain breaks, when it can be read."""
    manifest = read_manifest(manifest_file or manifest_path(export_path))
    return _verify(
        manifest,
        lambda: open(export_path, encoding="utf-8", newline=""),
        lambda: file_sha256(export_path),
        keyring,
        watch,
    )


def verify_export_bytes(
    body: bytes, manifest: Manifest, keyring: Keyring | None = None, watch: Watch | None = None
) -> ChainReport:
    """`verify_export` for an export held in memory (an evidence pack's member)."""
    return _verify(
        manifest,
        lambda: io.StringIO(body.decode("utf-8"), newline=""),
        lambda: hashlib.sha256(body).hexdigest(),
        keyring,
        watch,
    )


def _verify(
    manifest: Manifest,
    open_lines: OpenLines,
    sha256: Callable[[], str],
    keyring: Keyring | None,
    watch: Watch | None,
) -> ChainReport:
    problem = seal_problem(manifest, keyring)
    if not problem and not hmac.compare_digest(sha256(), manifest.file_sha256):
        problem = "the file does not match its manifest's sha256: it was changed after export"
    if not problem:
        return _chain(open_lines, manifest, watch)
    try:
        report = _chain(open_lines, manifest)
    except (KeyError, TypeError, ValueError):  # what was changed may not even parse
        report = ChainReport(0, "")
    where = f"; {report.error}" if report.error else ""
    return ChainReport(report.count, report.head_hash, problem + where)


def _within(events: Iterable[Record], manifest: Manifest, problems: list[str]) -> Iterator[Record]:
    """The events, until one lies outside the stated range (named in `problems`)."""
    since = datetime.fromisoformat(manifest.since) if manifest.since else None
    until = datetime.fromisoformat(manifest.until) if manifest.until else None
    for event in events:
        try:
            created_at = datetime.fromisoformat(event["created_at"])
        except (TypeError, ValueError):
            problems.append(f"event #{event['seq']} has no valid created_at")
            return
        if since and created_at < since:
            problems.append(f"event #{event['seq']} was created before the range's start")
        elif until and created_at > until:
            problems.append(f"event #{event['seq']} was created after the range's end")
        elif event["seq"] > manifest.through_seq:
            problems.append(
                f"event #{event['seq']} comes after the chain's head the export was "
                f"pinned to (#{manifest.through_seq})"
            )
        if problems:
            return
        yield event


def _chain(open_lines: OpenLines, manifest: Manifest, watch: Watch | None = None) -> ChainReport:
    problems: list[str] = []
    with open_lines() as lines:
        events = _within(read_export(lines, manifest.format), manifest, problems)
        if watch:
            events = watch(events)
        if manifest.first_seq is None:  # an empty range: the file must hold no event either
            if next(events, None) is not None:
                return ChainReport(0, "", "the file holds events but its manifest lists none")
            return ChainReport(0, "", problems[0] if problems else None)
        report = check_links(
            events, first_seq=manifest.first_seq, prev_hash=manifest.first_prev_hash
        )
    if problems:
        return ChainReport(report.count, report.head_hash, problems[0])
    if not report.intact:
        return report
    if report.count < manifest.count:
        return ChainReport(
            report.count,
            report.head_hash,
            f"the file ends after {report.count} event(s) but its manifest lists "
            f"{manifest.count}: events were removed from the end",
        )
    if report.count > manifest.count:
        return ChainReport(
            report.count,
            report.head_hash,
            f"the file holds {report.count} event(s) but its manifest lists "
            f"{manifest.count}: events were added at the end",
        )
    last_seq = manifest.first_seq + report.count - 1
    if (last_seq, report.head_hash) != (manifest.last_seq, manifest.last_hash):
        return ChainReport(
            report.count,
            report.head_hash,
            f"the file's last event (#{last_seq}) is not the one its manifest names",
        )
    return report
