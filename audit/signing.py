"""Ed25519 signatures on what Airlock states about its trail (export manifests,
anchors of the chain's head, archived segments, evidence packs), so that anyone
holding only the public key can check them: unlike the export HMAC, whoever can
verify a signature cannot forge one.

The private key comes from AIRLOCK_AUDIT_SIGNING_KEY (or `_FILE`), a PEM file.
Every key that ever signed is listed in the database with its validity, public
parts only, so that keys can rotate and what an older key signed still verifies.
An auditor pins the fingerprints out of band: a key listed by Airlock proves
nothing on its own word.
"""

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.db import transaction
from django.utils import timezone

from audit import trail
from audit.actions import Action
from audit.models import SigningKey
from lib.secrets import MissingSecret, read_secret

logger = logging.getLogger(__name__)
SIGNING_KEY = "AIRLOCK_AUDIT_SIGNING_KEY"
KEYRING_FORMAT = "airlock-audit-keyring/1"


def raw_public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(key: Ed25519PublicKey) -> str:
    """A short, stable name for a key: the first 16 hex digits of its fingerprint."""
    return hashlib.sha256(raw_public_bytes(key)).hexdigest()[:16]


def fingerprint_of(key: Ed25519PublicKey) -> str:
    """As OpenSSH prints one (`ssh-keygen -l`): SHA256 of the raw key, base64."""
    digest = hashlib.sha256(raw_public_bytes(key)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@dataclass(frozen=True)
class Signer:
    key_id: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def sign(self, statement: bytes) -> str:
        return base64.b64encode(self.private_key.sign(statement)).decode()


@cache
def _load_signer(pem: str) -> Signer:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        # Never echo the key itself: say only what is wrong with it.
        raise MissingSecret(f"{SIGNING_KEY} is not an unencrypted Ed25519 private key in PEM")
    return Signer(key_id_of(key.public_key()), key)


def configured_signer() -> Signer | None:
    """The signing key, if one is configured (MissingSecret if it is unreadable)."""
    pem = read_secret(SIGNING_KEY, required=False)
    return _load_signer(pem) if pem else None


def signer() -> Signer | None:
    """The configured key, listed (at its first use) as the current one: the key
    it replaces is retired from now on, and the rotation is an audit event."""
    current = configured_signer()
    if current is None:
        return None
    listed = SigningKey.objects.filter(key_id=current.key_id).first()
    if listed is None:
        _list_key(current)
    elif listed.valid_until is not None or listed.public_key != public_pem(current.public_key):
        # A key put back after its rotation (a rollback) would sign what no keyring
        # accepts, anchors on the witness included, for years: refuse, loudly.
        raise MissingSecret(
            f"{SIGNING_KEY} is key {current.key_id}, retired at {listed.valid_until}: "
            "configure the current key (or a new one)"
        )
    return current


def _list_key(current: Signer) -> None:
    with transaction.atomic():
        if SigningKey.objects.select_for_update().filter(key_id=current.key_id).exists():
            return
        now = timezone.now()
        retired = list(
            SigningKey.objects.select_for_update()
            .filter(valid_until__isnull=True)
            .values_list("key_id", flat=True)
        )
        SigningKey.objects.filter(key_id__in=retired).update(valid_until=now)
        SigningKey.objects.create(
            key_id=current.key_id, public_key=public_pem(current.public_key), valid_from=now
        )
        trail.record(
            action=Action.AUDIT_SIGNING_KEY_ADDED,
            info=trail.SYSTEM,
            data={
                "key_id": current.key_id,
                "fingerprint": fingerprint_of(current.public_key),
                "retired": retired,
            },
        )


@dataclass(frozen=True)
class PublicKey:
    """A key that may verify, and when it was allowed to sign (None: open)."""

    key_id: str
    key: Ed25519PublicKey
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def verifies(self, statement: bytes, signature: str, signed_at: datetime) -> str | None:
        """None when the signature is good, else what is wrong."""
        if self.valid_from and signed_at < self.valid_from:
            return f"it claims to be signed before key {self.key_id} was in use"
        if self.valid_until and signed_at > self.valid_until:
            return f"it claims to be signed after key {self.key_id} was retired"
        try:
            self.key.verify(base64.b64decode(signature, validate=True), statement)
        except (InvalidSignature, ValueError):
            return f"its signature does not verify with key {self.key_id}"
        return None


Keyring = dict[str, PublicKey]


def keyring() -> dict[str, Any]:
    """Every key that signed (the configured one listed first if it has not yet), as
    the file `verify_audit --public-key` reads. MissingSecret for an unreadable key."""
    signer()
    return keyring_document(list(SigningKey.objects.order_by("valid_from")))


def _readable(key: SigningKey) -> bool:
    try:
        _public(key.public_key)
    except ValueError:
        logger.error("signing key %s is listed with an unreadable public key", key.key_id)
        return False
    return True


def listed_keyring() -> Keyring:
    """The keys the database lists, as a keyring: Airlock's word only; an auditor
    gives their own (`--public-key`)."""
    return {
        key.key_id: PublicKey(key.key_id, _public(key.public_key), key.valid_from, key.valid_until)
        for key in SigningKey.objects.all()
    }


def keyring_document(keys: list[SigningKey]) -> dict[str, Any]:
    return {
        "format": KEYRING_FORMAT,
        "keys": [
            {
                "key_id": key.key_id,
                "fingerprint": fingerprint_of(_public(key.public_key)),
                "public_key": key.public_key,
                "valid_from": trail.utc_iso(key.valid_from),
                "valid_until": trail.utc_iso(key.valid_until) if key.valid_until else None,
            }
            for key in keys
            if _readable(key)
        ],
    }


def _public(pem: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("not a public key in PEM") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def read_keyring(path: str | Path) -> Keyring:
    """A PEM public key (valid at any time) or a keyring file (each key valid in its
    window). ValueError says what the file is not."""
    text = Path(path).read_text()
    if text.lstrip().startswith("-----BEGIN"):
        key = _public(text)
        return {key_id_of(key): PublicKey(key_id_of(key), key)}
    try:
        document = json.loads(text)
        if document.get("format") != KEYRING_FORMAT:
            raise ValueError
        ring: Keyring = {}
        for entry in document["keys"]:
            key = _public(entry["public_key"])
            until = entry.get("valid_until")
            valid_from = datetime.fromisoformat(entry["valid_from"])
            valid_until = datetime.fromisoformat(until) if until else None
            if valid_from.tzinfo is None or (valid_until and valid_until.tzinfo is None):
                raise ValueError
            ring[key_id_of(key)] = PublicKey(key_id_of(key), key, valid_from, valid_until)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError(
            f"{path} is neither an Ed25519 public key in PEM nor an Airlock keyring"
        ) from None
    return ring


def check_signature(
    ring: Keyring, statement: bytes, *, key_id: str, signature: str, signed_at: str
) -> str | None:
    """None when `signature` over `statement` is good, else what is wrong."""
    if not signature:
        return "it is not signed"
    key = ring.get(key_id)
    if key is None:
        return f"it was signed with key {key_id or '(none)'}, which the given keys do not hold"
    try:
        moment = datetime.fromisoformat(signed_at)
    except (TypeError, ValueError):
        return "its signing time is not a date-time"
    if moment.tzinfo is None:
        return "its signing time has no time zone"
    return key.verifies(statement, signature, moment)
