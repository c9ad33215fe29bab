"""Evidence packs: one zip holding a period's signed export, the anchors that cover
it, the access report, break-glass reviews and a control map, with an index
(`pack.json`) that lists every file's sha256 and size and is signed with Ed25519.

broker/evidence.py builds a pack; this module holds its format and checks one
offline: with the public key only, no database and no secret. The zip is read in
memory, member by member within size limits, and never extracted: a pack is
checked before anything in it is trusted, its names included.
"""

import hashlib
import hmac
import json
import lzma
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from django.core.management.base import CommandError

from audit import signing
from audit.anchors import ANCHOR_PREFIX, AnchorCheck, parse_anchor
from audit.manifest import parse_manifest, stated_range, verify_export_bytes
from audit.signing import Keyring, Signer

PACK_FORMAT = "airlock-evidence-pack/1"
SIGNATURE_CONTEXT = b"airlock-evidence-pack/1\n"
INDEX = "pack.json"
EXPORT = "audit/events.jsonl"
EXPORT_MANIFEST = f"{EXPORT}.manifest.json"
ANCHORS = ANCHOR_PREFIX  # anchors/NNN.json, as the witness names its folder
SEALS = ("signature",)
# Limits for reading a pack in memory: a member's size is what it inflates to, read
# up to the limit and no further (a zip's own header may lie).
MAX_MEMBERS = 10_000
MAX_INDEX_BYTES = 16 << 20
MAX_MEMBER_BYTES = 1 << 30
MAX_PACK_BYTES = 4 << 30


class PackError(Exception):
    """What makes a pack unreadable or untrustworthy, named."""


def statement(index: dict[str, Any]) -> bytes:
    """Every field of the index but its signature, canonically: what it signs."""
    stated = {k: v for k, v in index.items() if k not in SEALS}
    return SIGNATURE_CONTEXT + json.dumps(stated, sort_keys=True, separators=(",", ":")).encode()


def sign_index(index: dict[str, Any], signer: Signer, signed_at: str) -> dict[str, Any]:
    signed = {**index, "key_id": signer.key_id, "signed_at": signed_at}
    return {**signed, "signature": signer.sign(statement(signed))}


def file_entry(name: str, body: bytes) -> dict[str, Any]:
    return {"name": name, "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}


@dataclass(frozen=True)
class Part:
    """One line of a pack's check: what was checked, and what it showed or what is
    wrong with it (`problem`)."""

    name: str
    detail: str
    problem: str | None = None


def verify_pack(path: str | Path, keyring: Keyring) -> Iterator[Part]:
    """Check a pack part by part; the first part with a problem is the last one."""
    try:
        members = _read_members(path)
    except PackError as exc:
        yield Part("zip", "", str(exc))
        return
    yield Part("zip", f"{len(members)} file(s), read in memory, names and sizes safe")
    try:
        index = _index(members)
    except PackError as exc:
        yield Part(INDEX, "", str(exc))
        return
    for part in _parts(members, index, keyring):
        yield part
        if part.problem:
            return


def check_pack(pack: str, public_key: str | None, write: Callable[[str], None]) -> None:
    """`verify_audit --pack`: one line per part; CommandError names the first problem."""
    check_signed_file("pack", pack, public_key, verify_pack, write)


def check_signed_file(
    what: str,
    path: str,
    public_key: str | None,
    verify: Callable[[str, Keyring], Iterator[Part]],
    write: Callable[[str], None],
) -> None:
    """Check a signed file offline, one line per part; CommandError names the first
    problem (an evidence pack, an access review's evidence)."""
    if not public_key:
        raise CommandError(f"a {what} is checked with --public-key KEY")
    try:
        keyring = signing.read_keyring(public_key)
    except (OSError, ValueError) as exc:
        raise CommandError(f"{public_key}: {exc}") from None
    for part in verify(path, keyring):
        if part.problem:
            raise CommandError(f"{what} {path} BROKEN: {part.name}: {part.problem}")
        write(f"{part.name}: {part.detail}")
    write(f"{what} {path} verified")


def _parts(members: dict[str, bytes], index: dict[str, Any], ring: Keyring) -> Iterator[Part]:
    problem = signing.check_signature(
        ring,
        statement(index),
        key_id=str(index.get("key_id", "")),
        signature=str(index.get("signature", "")),
        signed_at=str(index.get("signed_at", "")),
    )
    period = index.get("period", {})
    yield Part(
        INDEX,
        f"signed with key {index.get('key_id')} at {index.get('signed_at')}; period "
        f"{period.get('name')} ({period.get('since') or 'open'} to "
        f"{period.get('until') or 'open'})",
        f"the index cannot be trusted: {problem}" if problem else None,
    )
    yield _files(members, index)
    try:
        check = AnchorCheck(_anchors(members), ring)
    except PackError as exc:
        yield Part("anchors", "", str(exc))
        return
    yield _export(members, period, ring, check)
    yield _anchored(index, check)


def _read_members(path: str | Path) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise PackError(f"not a readable zip: {exc}") from None
    members: dict[str, bytes] = {}
    total = 0
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise PackError(f"it holds {len(infos)} files, more than a pack ever does")
        for info in infos:
            name = _safe_name(info.filename)
            if name in members:
                raise PackError(f"{name} is in the zip twice")
            limit = (
                MAX_INDEX_BYTES if name == INDEX or name.startswith(ANCHORS) else MAX_MEMBER_BYTES
            )
            try:
                with archive.open(info) as member:
                    body = member.read(limit + 1)
            except (
                OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile,
                NotImplementedError, RuntimeError,
            ) as exc:  # fmt: skip
                raise PackError(f"{name} cannot be read: {exc}") from None
            if len(body) > limit:
                raise PackError(f"{name} is larger than {limit} bytes once inflated")
            total += len(body)
            if total > MAX_PACK_BYTES:
                raise PackError(f"its files come to more than {MAX_PACK_BYTES} bytes inflated")
            members[name] = body
    return members


def _safe_name(name: str) -> str:
    path = PurePosixPath(name)
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or ":" in name
        or name.endswith("/")
        or any(part in ("", ".", "..") for part in name.split("/"))
        or path.is_absolute()
    ):
        raise PackError(f"unsafe file name in the zip: {name!r}")
    return name


def _index(members: dict[str, bytes]) -> dict[str, Any]:
    if INDEX not in members:
        raise PackError(f"it holds no {INDEX}: not an evidence pack")
    try:
        index = json.loads(members[INDEX])
    except ValueError:
        raise PackError(f"{INDEX} is not JSON") from None
    if not isinstance(index, dict) or index.get("format") != PACK_FORMAT:
        raise PackError(f"{INDEX} is not a {PACK_FORMAT} index")
    if not isinstance(index.get("files"), list) or not isinstance(index.get("period"), dict):
        raise PackError(f"{INDEX} lists no files or no period")
    return index


def _files(members: dict[str, bytes], index: dict[str, Any]) -> Part:
    listed: dict[str, dict[str, Any]] = {}
    for entry in index["files"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            return Part("files", "", f"{INDEX} lists a file without a name")
        listed[entry["name"]] = entry
    held = set(members) - {INDEX}
    if added := sorted(held - set(listed)):
        return Part("files", "", f"{added[0]} was added: the index does not list it")
    if removed := sorted(set(listed) - held):
        return Part("files", "", f"{removed[0]} was removed: the index lists it")
    for name in sorted(listed):
        body, entry = members[name], listed[name]
        if len(body) != entry.get("size") or not hmac.compare_digest(
            hashlib.sha256(body).hexdigest(), str(entry.get("sha256", ""))
        ):
            return Part(
                "files", "", f"{name} was changed: its sha256 is not the one the index lists"
            )
    return Part(
        "files", f"{len(listed)} file(s) match their sha256 and size; none added or removed"
    )


def _anchors(members: dict[str, bytes]) -> list:
    anchors = []
    for name in sorted(members):
        if name.startswith(ANCHORS):
            try:
                anchors.append(parse_anchor(members[name]))
            except ValueError:
                raise PackError(f"{name} is not an anchor") from None
    return anchors


def _export(
    members: dict[str, bytes], period: dict[str, Any], ring: Keyring, check: AnchorCheck
) -> Part:
    if EXPORT not in members or EXPORT_MANIFEST not in members:
        return Part(EXPORT, "", "the pack holds no export, or no manifest for it")
    try:
        manifest = parse_manifest(members[EXPORT_MANIFEST])
        report = verify_export_bytes(members[EXPORT], manifest, ring, watch=check.watch)
    except (ValueError, KeyError, TypeError) as exc:
        return Part(EXPORT, "", f"cannot be checked: {exc}")
    if report.error:
        return Part(EXPORT, "", f"{report.error} ({report.count} event(s) verified before it)")
    if (manifest.since, manifest.until) != (period.get("since"), period.get("until")):
        return Part(EXPORT, "", "its manifest states another range than the pack's period")
    return Part(
        EXPORT,
        f"intact: {report.count} event(s), head {report.head_hash}; its signed manifest "
        f"says it holds {stated_range(manifest)}",
    )


def _anchored(index: dict[str, Any], check: AnchorCheck) -> Part:
    coverage = index.get("anchors") or {}
    if not coverage.get("witness"):
        if check.count or check.problems:
            return Part("anchors", "", "the index says no witness, yet the pack holds anchors")
        why = coverage.get("why") or "the index names no witness"
        return Part("anchors", f"none: {why}; the export rests on its signature alone")
    problem = check.verdict(None)
    if problem:
        return Part("anchors", "", problem)
    if check.count != coverage.get("count"):
        return Part(
            "anchors",
            "",
            f"the index lists {coverage.get('count')} anchor(s), the pack holds {check.count}",
        )
    later = check.count - check.met
    return Part(
        "anchors",
        f"{check.count} signed anchor(s) from {coverage['witness']}: {check.met} agree with "
        f"the export's events, {later} of the chain after its last event",
    )
