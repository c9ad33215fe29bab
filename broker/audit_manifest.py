"""Export manifests: what an exported file holds, sealed with an HMAC, so the
file can be checked offline, without the database."""

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from broker.audit import ChainReport, check_links
from broker.audit_export import FORMATS, Record, read_export
from broker.secrets import read_secret

HMAC_KEY = "AIRLOCK_EXPORT_HMAC_KEY"


@dataclass
class Manifest:
    format: str
    since: str
    until: str
    count: int
    first_seq: int | None
    last_seq: int | None
    first_prev_hash: str | None
    last_hash: str | None
    file_sha256: str
    hmac_sha256: str


class Sealer:
    """Hashes and HMACs the bytes of an export as they are written."""

    def __init__(self):
        self.sha256 = hashlib.sha256()
        self.hmac = hmac.new(read_secret(HMAC_KEY).encode(), digestmod=hashlib.sha256)

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        self.hmac.update(chunk)


class SealedExport:
    """The bytes of an export, with its manifest once they have all been read.

    The command writes them to a file; the API streams them, and computes the
    same manifest again for a client that asks (rows never change, and the
    rendering is deterministic, so the same range gives the same bytes)."""

    def __init__(
        self, records: Iterable[Record], export_format: str, since: str = "", until: str = ""
    ):
        self.records, self.format, self.since, self.until = records, export_format, since, until
        self.sealer = Sealer()
        self.count, self.first, self.last = 0, None, None

    def _tracked(self):
        for record in self.records:
            self.count += 1
            self.first = self.first or record
            self.last = record
            yield record

    def chunks(self) -> Iterator[bytes]:
        rows, _, _ = FORMATS[self.format]
        for line in rows(self._tracked()):
            chunk = line.encode()
            self.sealer.update(chunk)
            yield chunk

    def manifest(self) -> Manifest:
        first, last = self.first, self.last
        return Manifest(
            format=self.format,
            since=self.since,
            until=self.until,
            count=self.count,
            first_seq=first["seq"] if first else None,
            last_seq=last["seq"] if last else None,
            first_prev_hash=first["prev_hash"] if first else None,
            last_hash=last["hash"] if last else None,
            file_sha256=self.sealer.sha256.hexdigest(),
            hmac_sha256=self.sealer.hmac.hexdigest(),
        )


def manifest_path(export_path: str | Path) -> Path:
    return Path(f"{export_path}.manifest.json")


def write_manifest(export_path: str | Path, manifest: Manifest) -> Path:
    path = manifest_path(export_path)
    path.write_text(json.dumps(asdict(manifest), indent=2, sort_keys=True) + "\n")
    return path


def verify_export(export_path: str | Path, manifest_file: str | Path | None = None) -> ChainReport:
    """Check a file against its manifest's HMAC and its own chain; the first problem wins,
    but a changed file also says where its chain breaks."""
    manifest = Manifest(**json.loads(Path(manifest_file or manifest_path(export_path)).read_text()))
    sealer = Sealer()
    with open(export_path, "rb") as raw:
        for chunk in iter(lambda: raw.read(1 << 16), b""):
            sealer.update(chunk)
    sealed = hmac.compare_digest(sealer.hmac.hexdigest(), manifest.hmac_sha256)
    with open(export_path, encoding="utf-8", newline="") as text:
        report = _chain(text, manifest)
    if not sealed:
        where = f"; {report.error}" if report.error else ""
        return ChainReport(
            report.count,
            report.head_hash,
            "the file's HMAC does not match its manifest: it was changed after export "
            f"(or the key differs){where}",
        )
    return report


def _chain(lines: Iterator[str], manifest: Manifest) -> ChainReport:
    if not manifest.count:
        return ChainReport(0, "")
    events = read_export(lines, manifest.format)
    report = check_links(events, first_seq=manifest.first_seq, prev_hash=manifest.first_prev_hash)
    if report.intact and (report.count, report.head_hash) != (manifest.count, manifest.last_hash):
        return ChainReport(
            report.count,
            report.head_hash,
            f"the file ends after {report.count} event(s) but its manifest lists "
            f"{manifest.count}: events were removed from the end",
        )
    return report
