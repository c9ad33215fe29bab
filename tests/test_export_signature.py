"""Export manifests are signed with Ed25519: an auditor holding only the public
key checks them offline, without any secret, and nobody without the private key
can forge one. Keys rotate; what an older key signed still verifies within its
validity, and a retired key cannot sign anything dated after its retirement."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from audit import signing, trail
from audit.actions import Action
from audit.manifest import HMAC_KEY, Manifest, seal, write_manifest
from audit.models import AuditEvent, SigningKey
from audit.trail import utc_iso


def private_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem_of(private: str) -> str:
    return signing.public_pem(
        serialization.load_pem_private_key(private.encode(), None).public_key()
    )


@pytest.fixture
def keys(db, monkeypatch, tmp_path):
    """Sign with a fresh key; no HMAC key, so only the signature can seal."""
    for name in (HMAC_KEY, signing.SIGNING_KEY):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)

    def use(pem: str) -> Path:
        monkeypatch.setenv(signing.SIGNING_KEY, pem)
        public = tmp_path / f"key-{len(list(tmp_path.glob('key-*')))}.pub"
        public.write_text(public_pem_of(pem))
        return public

    return use


@pytest.fixture
def history(db):
    for number in range(3):
        with transaction.atomic():
            trail.record(action=Action.CATALOG_SYNCED, info=trail.SYSTEM, data={"n": number})


def export(path: Path) -> dict:
    call_command("export_audit", "--format", "jsonl", "--output", str(path))
    return json.loads(Path(f"{path}.manifest.json").read_text())


def verify(path: Path, public_key: Path | None) -> str:
    args = ["--export", str(path)] + (["--public-key", str(public_key)] if public_key else [])
    try:
        call_command("verify_audit", *args)
    except CommandError as exc:
        return str(exc)
    return "intact"


def test_a_signed_export_verifies_with_the_public_key_alone(keys, history, tmp_path):
    public = keys(private_pem())
    path = tmp_path / "audit.jsonl"
    manifest = export(path)
    assert manifest["version"] == 3 and manifest["hmac_sha256"] == ""
    assert manifest["key_id"] == signing.key_id_of(
        serialization.load_pem_public_key(public.read_bytes())
    )
    assert verify(path, public) == "intact"
    # Without a public key and without the HMAC key there is nothing to check with.
    assert "check it with --public-key" in verify(path, None)


def test_every_field_is_covered_by_the_signature(keys, history, tmp_path):
    public = keys(private_pem())
    path = tmp_path / "audit.jsonl"
    manifest = export(path)
    for field in ("since", "until", "through_seq", "count", "last_hash", "file_sha256", "format"):
        changed = {
            **manifest,
            field: manifest[field] + 1 if field in ("through_seq", "count") else "x",
        }
        Path(f"{path}.manifest.json").write_text(json.dumps(changed))
        assert "signature does not verify" in verify(path, public), field


def test_another_key_or_a_forged_signature_fails(keys, history, tmp_path):
    keys(private_pem())
    path = tmp_path / "audit.jsonl"
    manifest = export(path)
    stranger = keys(private_pem())
    assert "which the given keys do not hold" in verify(path, stranger)
    # The forger re-signs a changed manifest with their own key, under the real key id.
    forged = Manifest(**{**manifest, "count": manifest["count"] - 1})
    seal(forged, signing.configured_signer(), None)
    forged.key_id = manifest["key_id"]
    write_manifest(path, forged)
    original = tmp_path / "key-0.pub"
    assert "signature does not verify" in verify(path, original)


def test_keys_rotate_and_old_exports_still_verify(keys, history, tmp_path):
    first_pem = private_pem()
    keys(first_pem)
    old = tmp_path / "old.jsonl"
    export(old)
    keys(private_pem())
    new = tmp_path / "new.jsonl"
    export(new)

    listed = list(SigningKey.objects.order_by("valid_from"))
    assert len(listed) == 2 and listed[0].valid_until == listed[1].valid_from
    assert listed[1].valid_until is None
    rotated = AuditEvent.objects.filter(action=Action.AUDIT_SIGNING_KEY_ADDED).order_by("seq")
    assert [event.data["retired"] for event in rotated] == [[], [listed[0].key_id]]

    keyring = tmp_path / "keyring.json"
    call_command("audit_keys", "--output", str(keyring))
    assert verify(old, keyring) == "intact"
    assert verify(new, keyring) == "intact"

    # Whoever still holds the retired key cannot date a signature after its retirement.
    late = Manifest(**json.loads(Path(f"{new}.manifest.json").read_text()))
    seal(late, signing._load_signer(first_pem), None)
    write_manifest(new, late)
    assert "after key" in verify(new, keyring) and "was retired" in verify(new, keyring)


def test_the_keyring_is_served_to_auditors(keys, history, people, catalog, api):
    keys(private_pem())
    served = api(people.dave).get("/api/v1/audit/keys/").json()
    assert served["format"] == signing.KEYRING_FORMAT
    (key,) = served["keys"]
    assert key["fingerprint"].startswith("SHA256:") and key["valid_until"] is None
    assert api(people.charlie).get("/api/v1/audit/keys/").status_code == 403


def test_an_hmac_only_version_2_manifest_still_verifies(keys, history, tmp_path, monkeypatch):
    """Existing users keep their HMAC-sealed exports."""
    monkeypatch.setenv(HMAC_KEY, "an-older-key")
    path = tmp_path / "audit.jsonl"
    manifest = export(path)
    legacy = Manifest(**{**manifest, "version": 2, "key_id": "", "signed_at": "", "signature": ""})
    seal(legacy, None, b"an-older-key")
    write_manifest(path, legacy)
    assert "key_id" not in json.loads(Path(f"{path}.manifest.json").read_text())
    assert verify(path, None) == "intact"


def test_a_bad_key_is_a_clear_error_that_leaks_nothing(keys, history, tmp_path, monkeypatch):
    monkeypatch.setenv(signing.SIGNING_KEY, "-----BEGIN PRIVATE KEY-----\nsecret-bits\n")
    with pytest.raises(CommandError) as refused:
        export(tmp_path / "audit.jsonl")
    assert "not an unencrypted Ed25519 private key" in str(refused.value)
    assert "secret-bits" not in str(refused.value)
    not_a_key = tmp_path / "garbage.pub"
    not_a_key.write_text("{}")
    assert "neither an Ed25519 public key" in verify(tmp_path / "audit.jsonl", not_a_key)


def test_a_signature_dated_before_the_key_existed_fails(keys, history, tmp_path):
    keys(private_pem())
    call_command("audit_keys", "--output", str(tmp_path / "keyring.json"))
    path = tmp_path / "audit.jsonl"
    manifest = Manifest(**export(path))
    listed = SigningKey.objects.get()
    manifest.signed_at = utc_iso(listed.valid_from - timedelta(days=1))
    manifest.signature = signing.configured_signer().sign(manifest.statement())
    write_manifest(path, manifest)
    assert "before key" in verify(path, tmp_path / "keyring.json")


def test_the_audit_page_shows_each_key_and_its_fingerprint(keys, history, people, catalog, client):
    public = keys(private_pem())
    client.force_login(people.dave)
    page = client.get("/audit/").content.decode()
    key = serialization.load_pem_public_key(public.read_bytes())
    assert signing.fingerprint_of(key) in page and signing.key_id_of(key) in page
    downloaded = client.get("/audit/keys.json").json()
    assert [k["key_id"] for k in downloaded["keys"]] == [signing.key_id_of(key)]


def test_a_signing_time_without_a_zone_or_a_foreign_key_is_named(keys, history, tmp_path):
    public = keys(private_pem())
    path = tmp_path / "audit.jsonl"
    manifest = Manifest(**export(path))
    manifest.signed_at = "2026-12-01T00:00:00"  # naive: compared with aware times it crashed
    manifest.signature = signing.configured_signer().sign(manifest.statement())
    write_manifest(path, manifest)
    call_command("audit_keys", "--output", str(tmp_path / "keyring.json"))
    assert "has no time zone" in verify(path, tmp_path / "keyring.json")
    assert "has no time zone" in verify(path, public)
    from cryptography.hazmat.primitives.asymmetric import dh

    foreign = tmp_path / "dh.pub"  # a kind of key `cryptography` loads but cannot use here
    parameters = dh.generate_parameters(generator=2, key_size=512)
    foreign.write_bytes(
        parameters.generate_private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert "not an Ed25519 public key" in verify(path, foreign)
