"""The chain's head is anchored on a witness Airlock cannot rewrite (an S3 bucket
with Object Lock in compliance mode, moto here), and `verify_audit` checks the
chain against the anchors. Each attack is made as the tables' owner would make
it, with the guards switched off, and each is one the chain alone cannot see:
`verify_chain` still says intact."""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from audit import anchors, signing, trail
from audit.actions import Action
from audit.models import ChainAnchor, SigningKey
from audit.signing import Signer
from audit.tasks import anchor_chain_head
from audit.trail import verify_chain
from audit.witness import Witness, WitnessError
from lib.secrets import MissingSecret
from tests.support.trail import as_owner, rewrite_from
from tests.support.witness import new_bucket

EVENTS = 6


def record(count: int, start: int = 0) -> None:
    for number in range(start, start + count):
        with transaction.atomic():
            trail.record(action=Action.CATALOG_SYNCED, info=trail.SYSTEM, data={"n": number})


@pytest.fixture
def anchored(db, witness):
    """Six events, anchored at #3 and at #6 (the first: the signing key listed)."""
    signing.signer()
    record(2)
    anchors.anchor_head()
    record(EVENTS - 3, start=2)
    anchors.anchor_head()
    assert sorted(ChainAnchor.objects.values_list("seq", flat=True)) == [3, EVENTS]
    return witness


def verify() -> str:
    try:
        call_command("verify_audit")
    except CommandError as exc:
        return str(exc)
    return "intact"


def test_an_untouched_chain_agrees_with_its_anchors(anchored):
    assert verify() == "intact"


def test_truncation_is_named(anchored):
    as_owner("TRUNCATE broker_auditevent", "TRUNCATE broker_auditchainhead")
    assert verify_chain().intact  # what the chain alone says
    assert "the trail holds no event" in verify() and "truncated" in verify()


def test_deleting_the_newest_events_is_named(anchored):
    kept = trail.AuditEvent.objects.get(seq=4)
    as_owner(
        "DELETE FROM broker_auditevent WHERE seq > 4",
        f"UPDATE broker_auditchainhead SET seq = 4, hash = '{kept.hash}'",
    )
    assert verify_chain().intact
    problem = verify()
    assert "the chain ends at event #4" in problem
    assert "#5 to #6 were deleted from the end, or the database was rolled back" in problem


def test_a_rollback_that_carried_on_is_named(anchored):
    """An older backup restored (as of #2), and Airlock carried on writing."""
    kept = trail.AuditEvent.objects.get(seq=2)
    as_owner(
        "DELETE FROM broker_auditevent WHERE seq > 2",
        f"UPDATE broker_auditchainhead SET seq = 2, hash = '{kept.hash}'",
    )
    with connection.cursor() as cursor:  # the guards are back for Airlock's own writes
        cursor.execute("ALTER TABLE broker_auditevent ENABLE TRIGGER USER")
        cursor.execute("ALTER TABLE broker_auditchainhead ENABLE TRIGGER USER")
    record(EVENTS, start=100)
    assert verify_chain().intact
    assert "event #3 is not the one anchored at" in verify()


def test_a_rewritten_tail_with_recomputed_hashes_is_named(anchored):
    rewrite_from(5, "nothing to see here")
    assert verify_chain().intact
    problem = verify()
    assert f"event #{EVENTS} is not the one anchored at" in problem
    assert "rewritten from there on, its hashes recomputed" in problem


def test_a_forged_anchor_is_named(anchored):
    """Whoever may write the bucket but has no signing key can only forge."""
    witness = Witness(anchored)
    stranger = Signer("0" * 16, Ed25519PrivateKey.generate())
    forged = anchors.Anchor(
        seq=EVENTS,
        hash="f" * 64,
        created_at="2026-01-01T00:00:00+00:00",
        anchored_at=trail.utc_iso(timezone.now()),
        key_id=signing.configured_signer().key_id,  # the real key's name, another key
    )
    forged = anchors.Anchor(**{**forged.__dict__, "signature": stranger.sign(forged.statement())})
    witness.put(f"{anchors.ANCHOR_PREFIX}{EVENTS:020d}.json", forged.document(), "application/json")
    assert "the anchor of event #6 is forged: its signature does not verify" in verify()


def test_anchoring_again_after_a_rewrite_leaves_both_anchors(anchored):
    """Whoever also holds the key anchors the rewritten chain, but cannot remove the
    first anchor."""
    rewrite_from(2, "rewritten")
    head = trail.AuditEvent.objects.latest("seq")
    signer = signing.configured_signer()  # the real key: the attacker holds the server
    again = anchors.Anchor(
        seq=head.seq,
        hash=head.hash,
        created_at=trail.utc_iso(head.created_at),
        anchored_at=trail.utc_iso(timezone.now()),
        key_id=signer.key_id,
    )
    again = anchors.Anchor(**{**again.__dict__, "signature": signer.sign(again.statement())})
    Witness(anchored).put(
        f"{anchors.ANCHOR_PREFIX}{head.seq:020d}.json", again.document(), "application/json"
    )
    assert "the witness holds anchors of event #6 with different hashes" in verify()


def test_an_anchor_cannot_be_deleted_from_the_witness(anchored, aws_server):
    s3 = aws_server.client("s3")  # even the bucket's administrator
    version = s3.list_object_versions(Bucket=anchored)["Versions"][0]
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=anchored, Key=version["Key"], VersionId=version["VersionId"])


def test_a_bucket_without_object_lock_is_refused(db, witness, aws_server, settings):
    settings.AIRLOCK_WITNESS_BUCKET = new_bucket(aws_server, object_lock=False)
    record(1)
    with pytest.raises(WitnessError):
        anchors.anchor_head()
    assert not ChainAnchor.objects.exists()


def test_an_unchanged_head_is_anchored_once(anchored):
    assert anchors.anchor_head() is None
    assert ChainAnchor.objects.count() == 2


def test_anchors_check_offline_against_an_export(anchored, tmp_path, settings):
    """An auditor downloads the anchors and checks an export with the public key."""
    folder = tmp_path / "anchors"
    folder.mkdir()
    for number, anchor in enumerate(anchors.witnessed_anchors(Witness(anchored))):
        (folder / f"{number}.json").write_bytes(anchor.document())
    keyring = tmp_path / "keyring.json"
    call_command("audit_keys", "--output", str(keyring))
    export = tmp_path / "audit.jsonl"
    call_command("export_audit", "--format", "jsonl", "--output", str(export))
    settings.AIRLOCK_WITNESS_BUCKET = ""
    args = ["--export", str(export), "--public-key", str(keyring), "--anchors", str(folder)]
    call_command("verify_audit", *args)

    # The same export made after the tail was rewritten, freshly signed with the real key.
    rewrite_from(5, "rewritten")
    call_command("export_audit", "--format", "jsonl", "--output", str(export))
    with pytest.raises(CommandError, match="event #6 is not the one anchored"):
        call_command("verify_audit", *args)


def test_the_database_chain_check_offline_against_saved_anchors(anchored, tmp_path, settings):
    folder = tmp_path / "anchors"
    folder.mkdir()
    for number, anchor in enumerate(anchors.witnessed_anchors(Witness(anchored))):
        (folder / f"{number}.json").write_text(json.dumps(json.loads(anchor.document())))
    settings.AIRLOCK_WITNESS_BUCKET = ""
    as_owner("TRUNCATE broker_auditevent", "TRUNCATE broker_auditchainhead")
    with pytest.raises(CommandError, match="truncated"):
        call_command("verify_audit", "--anchors", str(folder))


def test_no_signing_key_no_anchor(db, witness, monkeypatch):
    monkeypatch.delenv("AIRLOCK_AUDIT_SIGNING_KEY", raising=False)
    monkeypatch.delenv("AIRLOCK_AUDIT_SIGNING_KEY_FILE", raising=False)
    record(1)
    with pytest.raises(WitnessError, match="anchors are signed"):
        anchors.anchor_head()


def test_every_export_is_anchored(
    db, witness, tmp_path, people, catalog, client, django_capture_on_commit_callbacks
):
    signing.signer()
    call_command("export_audit", "--format", "csv", "--output", str(tmp_path / "audit.csv"))
    exported = trail.AuditEvent.objects.get(action=Action.AUDIT_EXPORTED)
    assert ChainAnchor.objects.filter(seq=exported.seq).exists()
    # The web page's export asks the worker to anchor once it commits.
    client.force_login(people.dave)
    with django_capture_on_commit_callbacks() as callbacks:
        client.get("/audit/export/?format=jsonl")
    assert anchors._send_anchor_task in callbacks
    anchor_chain_head()  # what the worker runs
    latest = trail.AuditEvent.objects.filter(action=Action.AUDIT_EXPORTED).latest("seq")
    assert ChainAnchor.objects.filter(seq=latest.seq).exists()


def test_a_note_in_the_database_cannot_stop_the_anchoring(anchored):
    """Airlock's own role may write notes of anchors; the witness decides."""
    record(1)
    head = trail.AuditEvent.objects.latest("seq")
    ChainAnchor.objects.create(
        seq=head.seq, hash=head.hash, anchored_at=timezone.now(), location="forged note"
    )
    assert anchors.anchor_head() is not None
    assert head.seq in {anchor.seq for anchor in anchors.witnessed_anchors(Witness(anchored))}


def test_events_after_the_newest_anchor_are_said_to_be_unanchored(anchored, capsys):
    record(2)
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert f"the newest of event #{EVENTS}: 2 later event(s) not anchored yet" in out


def test_a_witness_without_any_anchor_is_not_intact(db, witness):
    """Anchoring that never worked (credentials, a policy): the chain is not witnessed."""
    signing.signer()
    record(2)
    assert "anchoring has never worked" in verify()


def test_anchors_that_stopped_coming_are_not_intact(anchored, settings):
    record(1)
    settings.AIRLOCK_ANCHOR_SECONDS = 0.001  # three intervals have long passed
    assert "anchoring has stopped" in verify()
    anchors.anchor_head()  # the worker is back
    assert verify() == "intact"


def test_a_key_put_back_after_its_rotation_signs_nothing(anchored, monkeypatch):
    """A rollback to a retired key would sign what no keyring accepts (anchors on
    the witness for years): Airlock refuses to sign with it."""
    old = signing.configured_signer()
    SigningKey.objects.filter(key_id=old.key_id).update(valid_until=timezone.now())
    record(1)
    with pytest.raises(MissingSecret, match="retired"):
        anchors.anchor_head()
