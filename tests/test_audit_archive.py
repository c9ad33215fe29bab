"""Retention: old events move to the witness as signed segments and leave the
database through one path only the tables' owner can take (the trigger lets it
delete exactly what it names, in its own transaction); `verify_audit` walks the
archive and the database as one chain, and checks both against the anchors."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from audit import anchors, archive, signing, trail
from audit.actions import Action
from audit.models import AuditEvent
from audit.trail import verify_chain
from audit.witness import Witness


def record(count: int) -> None:
    for number in range(count):
        with transaction.atomic():
            trail.record(action=Action.CATALOG_SYNCED, info=trail.SYSTEM, data={"n": number})


def verify(*args: str) -> str:
    try:
        call_command("verify_audit", *args)
    except CommandError as exc:
        return str(exc)
    return "intact"


@pytest.fixture
def history(db, witness):
    """Six old events (the first lists the signing key), anchored; then a cutoff,
    then three recent ones."""
    signing.signer()
    record(5)
    anchors.anchor_head()
    cutoff = timezone.now()
    record(3)
    return cutoff


def test_old_events_move_to_the_witness_and_the_chain_still_verifies(history, capsys):
    call_command("archive_audit", "--before", history.isoformat())
    assert "archived events #1 to #6 (6)" in capsys.readouterr().out
    assert AuditEvent.objects.order_by("seq").first().seq == 7
    archived = AuditEvent.objects.get(action=Action.AUDIT_ARCHIVED)
    assert archived.data["last_seq"] == 6 and archived.data["location"].startswith("s3://")
    assert verify() == "intact"
    out = capsys.readouterr().out
    assert f"intact: {archived.seq} event(s)" in out and "agrees with 1 anchor(s)" in out
    # The database alone now starts at #7: without the archive that is a gap.
    assert "event #1 to #6 is missing" in verify_chain().error


def test_segments_follow_one_another(history, witness, monkeypatch):
    monkeypatch.setattr(archive, "SEGMENT_EVENTS", 4)
    recorded = archive.archive_before(history, Witness(witness), trail.SYSTEM)
    assert [(e.data["first_seq"], e.data["last_seq"]) for e in recorded] == [(1, 4), (5, 6)]
    assert verify() == "intact"


def test_nothing_due_changes_nothing(history, capsys):
    call_command("archive_audit", "--before", "2000-01-01")
    assert "nothing to archive" in capsys.readouterr().out
    assert AuditEvent.objects.order_by("seq").first().seq == 1


def test_events_deleted_without_archiving_are_named(history):
    """The owner uses the archive's own door, but never wrote the segment."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('airlock.archived_through', '3', true)")
        cursor.execute("DELETE FROM broker_auditevent WHERE seq <= 3")
    assert "event #1 to #3 is missing" in verify()


def test_a_missing_middle_segment_is_named(history, witness, monkeypatch):
    monkeypatch.setattr(archive, "SEGMENT_EVENTS", 2)
    archive.archive_before(history, Witness(witness), trail.SYSTEM)
    # A segment cannot be deleted (Object Lock); a verifier shown only part of the
    # bucket (a copy, a prefix) must still see the gap.
    shown = Witness(witness)
    real_versions = shown.versions
    monkeypatch.setattr(
        shown,
        "versions",
        lambda prefix: (v for v in real_versions(prefix) if "00000000000000000003-" not in v.key),
    )
    report = archive.verify_archive(shown, signing.listed_keyring())
    assert "a segment is missing" in report.error


def test_the_trigger_lets_the_owner_delete_only_what_it_names(history):
    refused = pytest.raises(DatabaseError, match="append-only")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM broker_auditevent WHERE seq = 1")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('airlock.archived_through', '2', true)")
        cursor.execute("DELETE FROM broker_auditevent WHERE seq <= 3")
    assert AuditEvent.objects.filter(seq__lte=3).count() == 3


def test_clear_errors(db, settings, witness):
    settings.AIRLOCK_AUDIT_RETENTION_DAYS = 0
    with pytest.raises(CommandError, match="no retention period"):
        call_command("archive_audit")
    with pytest.raises(CommandError, match="is not a date"):
        call_command("archive_audit", "--before", "last tuesday")
    settings.AIRLOCK_WITNESS_BUCKET = ""
    with pytest.raises(CommandError, match="needs a witness"):
        call_command("archive_audit", "--before", "2026-01-01")


def test_retention_in_days(history, settings, capsys):
    settings.AIRLOCK_AUDIT_RETENTION_DAYS = 30
    call_command("archive_audit")
    assert "nothing to archive" in capsys.readouterr().out


def test_an_export_never_claims_archived_events(history, tmp_path, capsys):
    """A manifest states every event of its range: a range reaching into the archive
    cannot be exported from the database (the archive holds those events)."""
    call_command("archive_audit", "--before", history.isoformat())
    output = tmp_path / "audit.jsonl"
    exported_before = AuditEvent.objects.filter(action=Action.AUDIT_EXPORTED).count()
    with pytest.raises(CommandError, match="archived in the witness bucket"):
        call_command("export_audit", "--format", "jsonl", "--output", str(output))
    assert not output.exists()
    assert AuditEvent.objects.filter(action=Action.AUDIT_EXPORTED).count() == exported_before
    with pytest.raises(CommandError, match="archived in the witness bucket"):
        call_command("evidence_pack", "--since", "2000-01-01", "--output", str(tmp_path / "p.zip"))
    assert not (tmp_path / "p.zip").exists()
    # A range that starts after the archive is fine.
    call_command(
        "export_audit", "--format", "jsonl", "--output", str(output), "--since", history.isoformat()
    )
    assert verify("--export", str(output), "--public-key", str(keyring(tmp_path))) == "intact"


def test_the_api_refuses_a_range_into_the_archive(history, people, catalog, api):
    call_command("archive_audit", "--before", history.isoformat())
    head = AuditEvent.objects.latest("seq").seq
    answer = api(people.dave).get("/api/v1/audit/manifest/", {"through_seq": head})
    assert answer.status_code == 400 and "archived" in answer.json()["error"]["fields"]["since"]


def keyring(tmp_path):
    path = tmp_path / "keyring.json"
    call_command("audit_keys", "--output", str(path))
    return path
