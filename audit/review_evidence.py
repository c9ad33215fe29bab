"""A finished access review's evidence: one JSON document (who reviewed whom, when,
what they decided, with the facts they were shown), signed with the audit
signing key (Ed25519) and checked offline with the public key alone, as
evidence packs are (`verify_audit --review`, `airlock-verify --review`)."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from audit import signing
from audit.evidence import Part
from audit.signing import Keyring, Signer

REVIEW_FORMAT = "airlock-access-review/1"
SIGNATURE_CONTEXT = b"airlock-access-review/1\n"
SEALS = ("signature",)
MAX_BYTES = 64 << 20


def statement(document: dict[str, Any]) -> bytes:
    """Every field but the signature (the key and the signing time included),
    canonically: what the signature covers."""
    stated = {k: v for k, v in document.items() if k not in SEALS}
    return SIGNATURE_CONTEXT + json.dumps(stated, sort_keys=True, separators=(",", ":")).encode()


def seal(document: dict[str, Any], signer: Signer, signed_at: str) -> dict[str, Any]:
    signed = {**document, "key_id": signer.key_id, "signed_at": signed_at}
    return {**signed, "signature": signer.sign(statement(signed))}


def as_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, indent=1).encode() + b"\n"


def verify_review(path: str | Path, keyring: Keyring) -> Iterator[Part]:
    """Check a review's evidence file; the first part with a problem is the last one."""
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_BYTES + 1)
    except OSError as exc:
        yield Part("file", "", f"cannot be read: {exc.strerror or exc}")
        return
    if len(raw) > MAX_BYTES:
        yield Part("file", "", f"larger than {MAX_BYTES >> 20} MB: not an access review's")
        return
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        yield Part("file", "", "is not JSON")
        return
    if not isinstance(document, dict) or document.get("format") != REVIEW_FORMAT:
        yield Part("file", "", f"is not an access review's evidence ({REVIEW_FORMAT})")
        return
    problem = signing.check_signature(
        keyring,
        statement(document),
        key_id=str(document.get("key_id", "")),
        signature=str(document.get("signature", "")),
        signed_at=str(document.get("signed_at", "")),
    )
    if problem:
        yield Part("signature", "", problem)
        return
    review = document.get("review") or {}
    items = document.get("items") or []
    yield Part(
        "signature",
        f"signed with key {document['key_id']} at {document['signed_at']}",
    )
    decided = {
        decision: sum(1 for i in items if i.get("decision") == decision)
        for decision in ("keep", "remove")
    }
    unreviewed = sum(1 for i in items if i.get("unreviewed"))
    yield Part(
        "review",
        f"{review.get('name')} ({review.get('subject')}): {len(items)} person(s), "
        f"{decided['keep']} kept, {decided['remove']} removed ({unreviewed} of them not "
        f"reviewed by the deadline: the review's rule); closed {review.get('closed_at')}",
    )
