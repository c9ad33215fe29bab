"""Anchors: the chain's head (sequence number, hash, the event's time), signed
and written to the witness (audit/witness.py) every few minutes and after every
export, where Airlock cannot rewrite or delete it.

A hash chain alone cannot stop whoever owns its tables: they can switch the
guards off, truncate, delete the newest events, restore an older backup, or
rewrite the tail and recompute every hash, and the chain still links. Checked
against the anchors, each of these shows: an anchored event that is no longer
there, or is there with another hash. What happened after the newest anchor is
not covered yet; that window is the anchoring interval.
"""

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import signing
from audit.archive import verify_whole_chain
from audit.export import Record
from audit.models import AuditChainHead, AuditEvent, ChainAnchor
from audit.signing import Keyring
from audit.task_names import ANCHOR_CHAIN_HEAD
from audit.trail import ChainReport, utc_iso
from audit.witness import Witness, WitnessError, configured_witness

logger = logging.getLogger(__name__)
# Anchors this many intervals late mean anchoring has stopped.
STALL_INTERVALS = 3
ANCHOR_FORMAT = "airlock-anchor/1"
ANCHOR_PREFIX = "anchors/"


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    created_at: str  # the anchored event's own time
    anchored_at: str
    key_id: str
    signature: str = ""

    def statement(self) -> bytes:
        stated = {k: v for k, v in asdict(self).items() if k != "signature"}
        canonical = json.dumps({"format": ANCHOR_FORMAT, **stated}, sort_keys=True)
        return canonical.encode()

    def document(self) -> bytes:
        return json.dumps({"format": ANCHOR_FORMAT, **asdict(self)}, indent=2).encode() + b"\n"


def parse_anchor(body: bytes) -> Anchor:
    """ValueError when `body` is not an anchor."""
    try:
        stated: dict[str, Any] = json.loads(body)
        if stated.pop("format") != ANCHOR_FORMAT:
            raise ValueError
        anchor = Anchor(**stated)
        if not isinstance(anchor.seq, int):
            raise ValueError
    except (ValueError, TypeError, KeyError, AttributeError):
        raise ValueError("not an Airlock anchor") from None
    return anchor


def anchor_head(witness: Witness | None = None) -> ChainAnchor | None:
    """Anchor the chain's head unless it is anchored already (None then, and when
    there is no witness). WitnessError when it cannot be written."""
    witness = witness or configured_witness()
    if witness is None:
        return None
    signer = signing.signer()
    if signer is None:
        raise WitnessError(f"anchors are signed: set {signing.SIGNING_KEY} (or _FILE)")
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None or head.seq == 0:
        return None
    key = f"{ANCHOR_PREFIX}{head.seq:020d}.json"
    # The witness, not Airlock's own note, says whether it is anchored: a note
    # written into the database must not be able to stop the anchoring.
    if witness.holds(key):
        return None
    event = AuditEvent.objects.only("created_at").get(seq=head.seq)
    anchor = Anchor(
        seq=head.seq,
        hash=head.hash,
        created_at=utc_iso(event.created_at),
        anchored_at=utc_iso(timezone.now()),
        key_id=signer.key_id,
    )
    anchor = Anchor(**{**asdict(anchor), "signature": signer.sign(anchor.statement())})
    version = witness.put(key, anchor.document(), "application/json")
    return ChainAnchor.objects.create(
        seq=anchor.seq,
        hash=anchor.hash,
        anchored_at=anchor.anchored_at,
        location=f"s3://{witness.bucket}/{key}?versionId={version}",
    )


def anchor_now(say: Callable[[str], None]) -> None:
    """Anchor the head right after a command's export: a witness that fails is a
    warning, not a failed export (beat anchors again within minutes)."""
    try:
        anchor = anchor_head()
    except WitnessError as exc:
        say(f"warning: the chain's head was not anchored: {exc}")
        return
    if anchor is not None:
        say(f"anchored event #{anchor.seq} at {anchor.location}")


def anchor_after_commit() -> None:
    """Anchor the head soon after this transaction commits (an export's): by the
    worker, so that the answer does not wait on the witness."""
    if configured_witness() is not None:
        transaction.on_commit(_send_anchor_task)


def _send_anchor_task() -> None:
    # Beat anchors the head every few minutes anyway: a lost task only delays it.
    try:
        current_app.send_task(ANCHOR_CHAIN_HEAD)
    except Exception:
        logger.exception("could not enqueue the anchoring of the audit chain's head")


def witnessed_anchors(witness: Witness) -> list[Anchor]:
    """Every anchor the witness holds, every version of each. ValueError names an
    object that is not an anchor."""
    anchors = []
    for stored in witness.versions(ANCHOR_PREFIX):
        try:
            anchors.append(parse_anchor(stored.body))
        except ValueError:
            where = f"{stored.key} (version {stored.version_id})"
            raise ValueError(f"{where} is not an anchor") from None
    return anchors


def anchors_in(folder: str | Path) -> list[Anchor]:
    """The anchors saved in a folder (an evidence pack's, or downloaded by hand)."""
    anchors = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            anchors.append(parse_anchor(path.read_bytes()))
        except ValueError:
            raise ValueError(f"{path} is not an anchor") from None
    return anchors


class AnchorCheck:
    """Compares events, as a chain walk meets them, with the anchors of their
    sequence numbers; then names what the anchors prove was done."""

    def __init__(self, anchors: Iterable[Anchor], keyring: Keyring):
        self.problems: list[str] = []
        self.by_seq: dict[int, list[Anchor]] = defaultdict(list)
        for anchor in anchors:
            problem = signing.check_signature(
                keyring,
                anchor.statement(),
                key_id=anchor.key_id,
                signature=anchor.signature,
                signed_at=anchor.anchored_at,
            )
            if problem:
                self.problems.append(f"the anchor of event #{anchor.seq} is forged: {problem}")
            else:
                self.by_seq[anchor.seq].append(anchor)
        self.rewritten: list[Anchor] = []
        self.count = sum(len(anchors) for anchors in self.by_seq.values())
        self.met = 0  # anchors of events the walk met

    def watch(self, events: Iterator[Record]) -> Iterator[Record]:
        for event in events:
            for anchor in self.by_seq.get(event["seq"], ()):
                self.met += 1
                if anchor.hash != event["hash"]:
                    self.rewritten.append(anchor)
            yield event

    def verdict(self, chain_end: int | None, *, first_seq: int = 1) -> str | None:
        """What the anchors prove about a chain walked from `first_seq` to
        `chain_end` (a whole trail; None for an export, which holds a range of it and
        is compared event by event only), or None when they agree with it."""
        if self.problems:
            return self.problems[0]
        for seq, anchors in sorted(self.by_seq.items()):
            if len({anchor.hash for anchor in anchors}) > 1:
                return (
                    f"the witness holds anchors of event #{seq} with different hashes: the "
                    "chain was rewritten and anchored again"
                )
        if self.rewritten:
            first = min(self.rewritten, key=lambda anchor: anchor.seq)
            return (
                f"event #{first.seq} is not the one anchored at {first.anchored_at}: the chain "
                f"was rewritten from there on, its hashes recomputed ({len(self.rewritten)} "
                "anchor(s) disagree)"
            )
        newest = max(self.by_seq, default=0)
        if chain_end is not None and newest > chain_end:
            anchored_at = self.by_seq[newest][0].anchored_at
            if chain_end < first_seq:
                return (
                    f"the trail holds no event, but the anchor written at {anchored_at} "
                    f"records event #{newest}: the trail was truncated"
                )
            return (
                f"the chain ends at event #{chain_end}, but the anchor written at "
                f"{anchored_at} records event #{newest}: events #{chain_end + 1} to "
                f"#{newest} were deleted from the end, or the database was rolled back"
            )
        return None


def anchoring_stalled(anchors: list[Anchor], chain_end: int) -> str | None:
    """Why the witness does not vouch for the newest events (no anchor at all, or
    none for several anchoring intervals while events kept coming), or None."""
    if chain_end == 0:
        return None
    if not anchors:
        return (
            f"the witness holds no anchor although the chain has {chain_end} event(s): "
            "anchoring has never worked (see the worker's log)"
        )
    newest = max(anchors, key=lambda anchor: anchor.seq)
    overdue = timedelta(seconds=STALL_INTERVALS * settings.AIRLOCK_ANCHOR_SECONDS)
    if (
        chain_end > newest.seq
        and timezone.now() - datetime.fromisoformat(newest.anchored_at) > overdue
    ):
        return (
            f"the newest anchor (event #{newest.seq}) was written at {newest.anchored_at} and "
            f"{chain_end - newest.seq} event(s) followed: anchoring has stopped (see the "
            "worker's log), and nothing outside the database vouches for them"
        )
    return None


def verify_anchored_chain(
    anchors: Iterable[Anchor], keyring: Keyring, witness: Witness | None = None
) -> ChainReport:
    """The whole chain (the witness's archive, then the hot table), checked against
    the anchors."""
    check = AnchorCheck(anchors, keyring)
    report = verify_whole_chain(witness, keyring, watch=check.watch)
    problem = report.error or check.verdict(report.count)
    newest = max(check.by_seq, default=0)
    return ChainReport(
        report.count, report.head_hash, problem, anchors=check.count, anchored_through=newest
    )
