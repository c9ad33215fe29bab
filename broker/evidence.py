"""An evidence pack for a period: one zip an auditor checks offline with the public
key alone (`verify_audit --pack`). Its format and check are audit/evidence.py."""

import hashlib
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit import signing, trail
from audit.actions import Action
from audit.anchors import Anchor, witnessed_anchors
from audit.evidence import EXPORT, EXPORT_MANIFEST, INDEX, PACK_FORMAT, sign_index
from audit.export import parse_range
from audit.manifest import ExportRange, SealedExport, configured_hmac_key, manifest_bytes
from audit.trail import RequestInfo, utc_iso
from audit.witness import WitnessError, configured_witness
from broker.access_report import as_json, report_rows
from broker.evidence_controls import (
    ACCESS_REPORT,
    ACCESS_REVIEWS,
    ANCHORS,
    BREAK_GLASS,
    KEYRING,
    control_map,
    control_map_markdown,
)
from broker.models import AccessRequest, AccessReview

CONTROLS_JSON, CONTROLS_MD, README = "controls.json", "CONTROLS.md", "README.txt"
PERIOD = re.compile(r"^(?P<year>\d{4})(?:-Q(?P<quarter>[1-4])|-(?P<month>\d{2}))?$")


class EvidenceError(Exception):
    """A pack that cannot be made, and why."""


@dataclass(frozen=True)
class Period:
    name: str
    since: datetime | None
    until: datetime | None


def parse_period(text: str) -> Period:
    """`YYYY-QN`, `YYYY-MM` or `YYYY`, in UTC. EvidenceError names what is wrong."""
    match = PERIOD.match(text.strip())
    if not match:
        raise EvidenceError(
            f"{text!r} is not a period: give YYYY-QN, YYYY-MM or YYYY (e.g. 2026-Q4)"
        )
    year = int(match["year"])
    if match["quarter"]:
        first_month, months = (int(match["quarter"]) - 1) * 3 + 1, 3
    elif match["month"]:
        first_month, months = int(match["month"]), 1
        if not 1 <= first_month <= 12:
            raise EvidenceError(f"{text!r} is not a period: there is no month {first_month}")
    else:
        first_month, months = 1, 12
    try:
        first = date(year, first_month, 1)
        after = date(
            year + (first_month + months - 1) // 12, (first_month + months - 1) % 12 + 1, 1
        )
    except ValueError:
        raise EvidenceError(f"{text!r} is out of range") from None
    last = date.fromordinal(after.toordinal() - 1)
    since, until = parse_range(first.isoformat(), last.isoformat())
    return Period(text.strip(), since, until)


def range_period(since: str | None, until: str | None) -> Period:
    """A period given as --since/--until. EvidenceError names what is wrong."""
    try:
        start, end = parse_range(since, until)
    except ValueError as exc:
        raise EvidenceError(str(exc)) from None
    if start and end and start > end:
        raise EvidenceError("the period ends before it starts")
    return Period(f"{since or 'the start'} to {until or 'now'}", start, end)


def current_quarter() -> str:
    today = timezone.now().date()
    return f"{today.year}-Q{(today.month - 1) // 3 + 1}"


@dataclass(frozen=True)
class BuiltPack:
    seq: int  # the pack's own audit event
    events: int
    anchors: int
    files: int


def evidence_pack_build(out: IO[bytes], *, period: Period, actor, info: RequestInfo) -> BuiltPack:
    """Record the pack as an audit event, then write it to `out` (a seekable binary
    file). EvidenceError, before any event, when it cannot be made."""
    signer = signing.signer()
    if signer is None:
        raise EvidenceError(
            f"evidence packs are signed: set {signing.SIGNING_KEY} (or _FILE), an Ed25519 "
            "private key in PEM, so that the pack verifies with the public key"
        )
    witness = configured_witness()
    try:
        witnessed = witnessed_anchors(witness) if witness else []
    except (WitnessError, ValueError) as exc:
        raise EvidenceError(f"the witness's anchors cannot be read: {exc}") from None
    keyring = signing.keyring()
    with transaction.atomic():
        event = trail.record(
            action=Action.AUDIT_EVIDENCE_PACK,
            info=info,
            actor=actor,
            data={
                "period": period.name,
                "since": utc_iso(period.since) if period.since else "",
                "until": utc_iso(period.until) if period.until else "",
            },
        )
        # Pinned to the chain as it is with the pack's own event, as export_audit does.
        export_range = ExportRange(period.since, period.until, through_seq=event.seq)
        if problem := export_range.archived_problem():  # rolls the pack's event back
            raise EvidenceError(problem)
        export = SealedExport(export_range, "jsonl", (signer, configured_hmac_key()))
    pack = _Writer(out)
    with pack.archive:
        pack.put(EXPORT, export.chunks())
        manifest = export.manifest()
        pack.put(EXPORT_MANIFEST, [manifest_bytes(manifest)])
        rows = as_json(report_rows(period.since, period.until))
        pack.put(ACCESS_REPORT, (chunk.encode() for chunk in rows))
        pack.put_json(BREAK_GLASS, break_glass_reviews(period))
        pack.put_json(ACCESS_REVIEWS, access_reviews(period))
        covering = anchors_covering(witnessed, manifest.first_seq, manifest.last_seq)
        for number, anchor in enumerate(covering, 1):
            pack.put(f"{ANCHORS}{number:03d}.json", [anchor.document()])
        pack.put_json(KEYRING, keyring)
        pack.put_json(CONTROLS_JSON, control_map())
        pack.put(CONTROLS_MD, [control_map_markdown().encode()])
        pack.put(README, [readme(period).encode()])
        index = {
            "format": PACK_FORMAT,
            "period": {
                "name": period.name,
                "since": manifest.since,
                "until": manifest.until,
            },
            "created_at": utc_iso(event.created_at),
            "event_seq": event.seq,
            "files": sorted(pack.files, key=lambda entry: entry["name"]),
            "anchors": _coverage(witness.bucket if witness else None, covering, manifest),
        }
        signed = sign_index(index, signer, utc_iso(timezone.now()))
        pack.archive.writestr(INDEX, _json(signed))
    return BuiltPack(event.seq, manifest.count, len(covering), len(pack.files) + 1)


class _Writer:
    """A zip written member by member, each one's sha256 and size noted."""

    def __init__(self, out: IO[bytes]):
        self.archive = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED)
        self.files: list[dict[str, Any]] = []

    def put(self, name: str, chunks: Iterable[bytes]) -> None:
        digest, size = hashlib.sha256(), 0
        with self.archive.open(name, "w", force_zip64=True) as member:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                member.write(chunk)
        self.files.append({"name": name, "sha256": digest.hexdigest(), "size": size})

    def put_json(self, name: str, value: Any) -> None:
        self.put(name, [_json(value)])


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def anchors_covering(
    anchors: list[Anchor], first_seq: int | None, last_seq: int | None
) -> list[Anchor]:
    """Every anchor of an event from #first_seq to #last_seq, and the first anchor
    after #last_seq (each version the witness holds)."""
    if first_seq is None or last_seq is None:
        return []
    within = [a for a in anchors if first_seq <= a.seq <= last_seq]
    after = min((a.seq for a in anchors if a.seq > last_seq), default=None)
    later = [a for a in anchors if a.seq == after]
    return sorted(within + later, key=lambda a: (a.seq, a.anchored_at))


def _coverage(bucket: str | None, covering: list[Anchor], manifest) -> dict[str, Any]:
    if bucket is None:
        return {
            "witness": None,
            "count": 0,
            "why": "no witness is configured (AIRLOCK_WITNESS_BUCKET): the pack holds no anchor",
        }
    coverage: dict[str, Any] = {
        "witness": f"s3://{bucket}",
        "count": len(covering),
        "seqs": sorted({anchor.seq for anchor in covering}),
        "export_first_seq": manifest.first_seq,
        "export_last_seq": manifest.last_seq,
    }
    if not covering:
        coverage["why"] = "the witness holds no anchor of the export's events or after them yet"
    return coverage


def break_glass_reviews(period: Period) -> dict[str, Any]:
    """Every break-glass use of the period, with its review."""
    now = timezone.now()
    uses = AccessRequest.objects.filter(break_glass=True)
    if period.since:
        uses = uses.filter(created_at__gte=period.since)
    if period.until:
        uses = uses.filter(created_at__lte=period.until)
    uses = uses.select_related(
        "requester", "profile", "review", "review__closed_by", "grant"
    ).order_by("created_at", "pk")
    rows = [_break_glass_use(request, now) for request in uses]
    return {
        "period": period.name,
        "as_of": utc_iso(now),
        "count": len(rows),
        "closed": sum(1 for row in rows if row["review"] and row["review"]["status"] == "closed"),
        "open": sum(1 for row in rows if row["review"] and row["review"]["status"] == "open"),
        "overdue": sum(1 for row in rows if row["review"] and row["review"]["overdue"]),
        "uses": rows,
    }


def access_reviews(period: Period) -> dict[str, Any]:
    """Every access review closed in the period, each as its own signed evidence
    (checked alone with `verify_audit --review`), and those still open."""
    reviews = AccessReview.objects.all()
    if period.since:
        reviews = reviews.filter(Q(closed_at__gte=period.since) | Q(closed_at__isnull=True))
    if period.until:
        reviews = reviews.filter(started_at__lte=period.until)
    closed = reviews.filter(status=AccessReview.Status.CLOSED)
    if period.until:
        closed = closed.filter(closed_at__lte=period.until)
    still_open = reviews.filter(status=AccessReview.Status.OPEN).select_related("profile")
    return {
        "available": True,
        "period": period.name,
        "as_of": utc_iso(timezone.now()),
        "closed": [review.evidence for review in closed.order_by("closed_at", "pk")],
        "open": [
            {"id": str(r.pk), "name": r.name, "subject": r.subject, "due_at": utc_iso(r.due_at)}
            for r in still_open.order_by("started_at", "pk")
        ],
    }


def _iso(moment: datetime | None) -> str | None:
    return utc_iso(moment) if moment else None


def _break_glass_use(request: AccessRequest, now: datetime) -> dict[str, Any]:
    grant = getattr(request, "grant", None)
    review = getattr(request, "review", None)
    return {
        "request": str(request.pk),
        "requester": request.requester.get_username(),
        "profile": request.profile.slug,
        "used_at": utc_iso(request.created_at),
        "duration": int(request.duration.total_seconds()),
        "reason": request.reason,
        "ticket": request.ticket,
        "grant": {
            "id": str(grant.pk),
            "status": grant.status,
            "activated_at": _iso(grant.activated_at),
            "ended_at": _iso(grant.ended_at),
            "end_reason": grant.end_reason,
        }
        if grant
        else None,
        "review": {
            "status": "closed" if review.closed_at else "open",
            "due_at": utc_iso(review.due_at),
            "closed_at": _iso(review.closed_at),
            "closed_by": review.closed_by.get_username() if review.closed_by else None,
            "notes": review.notes,
            # Closed late, or still open past its due time when the pack was made.
            "overdue": (review.closed_at or now) > review.due_at,
        }
        if review
        else None,
    }


def readme(period: Period) -> str:
    return f"""Airlock evidence pack: {period.name}
{"=" * (len("Airlock evidence pack: ") + len(period.name))}

Period: {utc_iso(period.since) if period.since else "the chain's start"} to \
{utc_iso(period.until) if period.until else "the time the pack was made"} (UTC).

What it holds
  pack.json                          the index: period, time made, every other file's
                                     sha256 and size, the anchors' coverage; signed
                                     with Ed25519 (key_id, signed_at, signature)
  {EXPORT:<34} every audit event of the period, hash-chained
  {EXPORT_MANIFEST:<34} its manifest, signed: the range it holds
  {ANCHORS}NNN.json                      the chain's head as anchored on the witness (S3,
                                     Object Lock): every anchor of an exported event, and
                                     the first one after the last (none without a witness)
  {ACCESS_REPORT:<34} every grant that gave access in the period
  {BREAK_GLASS:<34} every break-glass use in the period, with its review
  {ACCESS_REVIEWS:<34} the access reviews closed in the period, each signed
                                     on its own (verify_audit --review), and those open
  {KEYRING:<34} Airlock's signing keys, public parts, with their validity
  {CONTROLS_JSON}, {CONTROLS_MD}         each control (PCI DSS v4.0, SOC 2, RBI) and the
                                     files that evidence it, and what they do not show

How to verify it (offline: no database, no secret)
  python manage.py verify_audit --pack THIS.zip --public-key KEY

KEY is Airlock's public key (PEM) or a keyring. Do not take keyring.json from this
pack on its word: compare the key fingerprints with those your organisation
recorded out of band when each key was introduced. The check names the first
problem: the index's signature, a file changed, added or removed, the export
against its signed manifest, the anchors' signatures and the export's events
against them.
"""
