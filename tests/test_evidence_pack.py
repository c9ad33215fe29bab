"""The evidence pack: one signed zip of a period (export, anchors, access report,
break-glass reviews, control map) that an auditor verifies offline with the public
key alone. Each tampering is caught and named."""

import io
import json
import os
import stat
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError

from audit import anchors, evidence, signing, trail
from audit.actions import Action
from audit.manifest import HMAC_KEY
from audit.models import AuditEvent, ChainAnchor
from audit.signing import Signer
from broker import lifecycle
from broker.access_report import as_json, report_rows
from broker.catalog.load import parse_catalog
from broker.evidence import parse_period
from broker.lifecycle import catalog_sync
from broker.models import AccessProfile
from lib.durations import parse_duration
from tests.support.catalogs import POLICY_CATALOG
from tests.support.people import WEB
from tests.support.trail import rewrite_from

PERIOD = f"{datetime.now(UTC).year}-Q{(datetime.now(UTC).month - 1) // 3 + 1}"
FILES = {
    "pack.json", "README.txt", "CONTROLS.md", "controls.json", "keyring.json",
    "access-report.json", "access-reviews.json", "break-glass-reviews.json",
    "audit/events.jsonl", "audit/events.jsonl.manifest.json",
}  # fmt: skip


@pytest.fixture
def history(people, submit, step_up, witness):
    """Requests approved and denied, a break-glass use reviewed, anchored twice."""
    signing.signer()
    approved = submit(people.alice)
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=approved.id, approver=people.bob, info=WEB)
    anchors.anchor_head()
    catalog_sync(catalog=parse_catalog(POLICY_CATALOG.encode()), info=trail.SYSTEM)
    step_up(people.alice)
    broke = lifecycle.access_request_submit(
        requester=people.alice,
        profile=AccessProfile.objects.get(slug="crown-jewels"),
        duration=parse_duration("30m"),
        reason="prod down, INC-77",
        break_glass=True,
        info=WEB,
    )
    review = lifecycle.access_review_start(
        name="Q4 test-db", profile=AccessProfile.objects.get(slug="test-db"),
        takes=timedelta(days=7), actor=people.carol, info=WEB,
    )  # fmt: skip
    lifecycle.access_review_close(review_id=review.pk, info=WEB)
    lifecycle.break_glass_review_close(
        request_id=broke.pk, reviewer=people.bob, notes="checked the session log", info=WEB
    )
    anchors.anchor_head()
    return broke


@pytest.fixture
def public_key(db, tmp_path) -> Path:
    """The keyring as an auditor downloads it (and pins out of band)."""
    path = tmp_path / "keyring.json"
    call_command("audit_keys", "--output", str(path))
    return path


def build(path: Path, *args: str) -> Path:
    call_command("evidence_pack", *(args or ("--period", PERIOD)), "--output", str(path))
    return path


def verify(path: Path, public_key: Path) -> str:
    out = io.StringIO()
    try:
        call_command(
            "verify_audit", "--pack", str(path), "--public-key", str(public_key), stdout=out
        )
    except CommandError as exc:
        return str(exc)
    return out.getvalue()


def offline(monkeypatch, settings) -> None:
    """No secret and no witness: what an auditor's machine has."""
    for name in (HMAC_KEY, signing.SIGNING_KEY):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    settings.AIRLOCK_WITNESS_BUCKET = ""


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def repack(path: Path, files: dict[str, bytes]) -> Path:
    tampered = path.with_name(f"tampered-{path.name}")
    with zipfile.ZipFile(tampered, "w") as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return tampered


def test_a_pack_verifies_offline_with_the_public_key_alone(
    history, public_key, tmp_path, monkeypatch, settings, django_assert_num_queries
):
    path = build(tmp_path / "pack.zip")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    files = members(path)
    anchor_files = {name for name in files if name.startswith("anchors/")}
    assert set(files) - anchor_files == FILES and len(anchor_files) == 2

    index = json.loads(files["pack.json"])
    assert index["format"] == "airlock-evidence-pack/1" and index["period"]["name"] == PERIOD
    assert {entry["name"] for entry in index["files"]} == set(files) - {"pack.json"}
    assert index["anchors"]["count"] == 2 and index["anchors"]["witness"].startswith("s3://")
    packed = AuditEvent.objects.get(action=Action.AUDIT_EVIDENCE_PACK)
    assert index["event_seq"] == packed.seq and packed.data["period"] == PERIOD
    # The pack's own event closes its export, and is anchored after it.
    events = [json.loads(line) for line in files["audit/events.jsonl"].splitlines()]
    assert events[-1]["seq"] == packed.seq and events[0]["seq"] == 1
    assert ChainAnchor.objects.filter(seq=packed.seq).exists()

    reviews = json.loads(files["break-glass-reviews.json"])
    assert reviews["count"] == 1 and reviews["closed"] == 1 and reviews["overdue"] == 0
    use = reviews["uses"][0]
    assert (use["requester"], use["profile"], use["reason"]) == (
        "alice",
        "crown-jewels",
        "prod down, INC-77",
    )
    assert use["review"]["closed_by"] == "bob"
    assert use["review"]["notes"] == "checked the session log"
    assert use["review"]["overdue"] is False
    reviews = json.loads(files["access-reviews.json"])
    assert reviews["available"] is True and reviews["open"] == []
    (closed,) = reviews["closed"]
    assert closed["review"]["name"] == "Q4 test-db" and closed["items"][0]["person"] == "alice"
    alone = tmp_path / "review.json"
    alone.write_text(json.dumps(closed))
    out = io.StringIO()
    call_command("verify_audit", "--review", str(alone), "--public-key", str(public_key),
                 stdout=out)  # fmt: skip
    assert out.getvalue().endswith("verified\n")
    period = parse_period(PERIOD)
    report = "".join(as_json(report_rows(period.since, period.until))).encode()
    assert files["access-report.json"] == report
    controls = {c["control"] for c in json.loads(files["controls.json"])["controls"]}
    assert {"7.2", "8.4", "8.6", "10.2", "10.3", "10.5"} <= controls
    assert {"CC6.1", "CC6.2", "CC6.3", "CC7.2", "8", "16", "17"} <= controls
    assert "verify_audit --pack" in files["README.txt"].decode()

    offline(monkeypatch, settings)
    with django_assert_num_queries(0):
        result = verify(path, public_key)
    lines = result.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [
        "zip",
        "pack.json",
        "files",
        "audit/events.jsonl",
        "anchors",
    ], result
    assert "audit/events.jsonl: intact" in result
    assert "anchors: 2 signed anchor(s)" in result and "2 agree with the export's events" in result
    assert lines[-1] == f"pack {path} verified"


@pytest.fixture
def pack(history, public_key, tmp_path, monkeypatch, settings) -> Path:
    path = build(tmp_path / "pack.zip")
    offline(monkeypatch, settings)
    return path


def test_a_changed_file_is_named(pack, public_key):
    files = members(pack)
    files["break-glass-reviews.json"] = files["break-glass-reviews.json"].replace(
        b'"overdue": true', b'"overdue": false'
    )
    files["access-reviews.json"] = b'{"available": true, "results": []}\n'
    problem = verify(repack(pack, files), public_key)
    assert "BROKEN: files: access-reviews.json was changed" in problem


def test_a_removed_file_is_named(pack, public_key):
    files = members(pack)
    del files["break-glass-reviews.json"]
    problem = verify(repack(pack, files), public_key)
    assert "BROKEN: files: break-glass-reviews.json was removed" in problem


def test_an_added_file_is_named(pack, public_key):
    files = members(pack)
    files["anchors/999.json"] = files["anchors/001.json"]
    problem = verify(repack(pack, files), public_key)
    assert "BROKEN: files: anchors/999.json was added" in problem


@pytest.mark.parametrize("same_key_id", [True, False])
def test_an_index_signed_again_with_another_key_is_named(pack, public_key, same_key_id):
    """Whoever changes a file and lists its new sha256 must sign the index again."""
    files = members(pack)
    files["access-reviews.json"] = b'{"available": true, "results": []}\n'
    index = json.loads(files["pack.json"])
    index["files"] = [
        evidence.file_entry(e["name"], files[e["name"]])
        if e["name"] == "access-reviews.json"
        else e
        for e in index["files"]
    ]
    stranger = Ed25519PrivateKey.generate()
    key_id = index["key_id"] if same_key_id else signing.key_id_of(stranger.public_key())
    files["pack.json"] = json.dumps(
        evidence.sign_index(index, Signer(key_id, stranger), index["signed_at"])
    ).encode()
    problem = verify(repack(pack, files), public_key)
    assert "BROKEN: pack.json: the index cannot be trusted" in problem
    if same_key_id:
        assert f"its signature does not verify with key {key_id}" in problem
    else:
        assert f"signed with key {key_id}, which the given keys do not hold" in problem


def test_a_rewritten_tail_packed_again_is_named(
    history, public_key, tmp_path, monkeypatch, settings
):
    """The database's owner rewrites the tail and recomputes the hashes; the pack built
    from it is signed with the real key, but the anchors from before remain."""
    last_anchored = ChainAnchor.objects.latest("seq").seq
    rewrite_from(last_anchored - 1, "nothing to see here")
    path = build(tmp_path / "pack.zip")
    offline(monkeypatch, settings)
    problem = verify(path, public_key)
    assert f"BROKEN: anchors: event #{last_anchored} is not the one anchored at" in problem
    assert "rewritten from there on, its hashes recomputed" in problem


@pytest.mark.parametrize(
    "name", ["../evil.txt", "/etc/passwd", "audit/../../x", "a\\b", "dir/", "C:/x"]
)
def test_unsafe_names_are_refused_without_extracting(pack, public_key, name):
    files = members(pack)
    files[name] = b"x"
    problem = verify(repack(pack, files), public_key)
    assert "BROKEN: zip: unsafe file name in the zip" in problem


def test_not_a_zip_is_named(tmp_path, public_key, db):
    path = tmp_path / "pack.zip"
    path.write_bytes(b"not a zip")
    assert "BROKEN: zip: not a readable zip" in verify(path, public_key)


def test_a_zip_without_an_index_is_named(pack, public_key):
    files = members(pack)
    del files["pack.json"]
    problem = verify(repack(pack, files), public_key)
    assert "BROKEN: pack.json: it holds no pack.json: not an evidence pack" in problem


def test_a_member_larger_than_its_limit_is_refused(pack, public_key, monkeypatch):
    """Sizes are what members inflate to, read no further than the limit."""
    monkeypatch.setattr(evidence, "MAX_INDEX_BYTES", 100)
    problem = verify(pack, public_key)
    assert "BROKEN: zip: anchors/001.json is larger than 100 bytes once inflated" in problem


def test_without_a_witness_the_index_says_so(db, people, public_key, tmp_path, settings):
    settings.AIRLOCK_WITNESS_BUCKET = ""
    path = build(tmp_path / "pack.zip")
    index = json.loads(members(path)["pack.json"])
    assert index["anchors"]["witness"] is None and "no witness" in index["anchors"]["why"]
    assert "anchors: none: no witness is configured" in verify(path, public_key)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--period", "2026-Q5"], "'2026-Q5' is not a period: give YYYY-QN, YYYY-MM or YYYY"),
        (["--period", "2026-13"], "there is no month 13"),
        (["--period", "last quarter"], "is not a period"),
        (["--period", "2026", "--since", "2026-01-01"], "not both"),
        ([], "give --period (e.g. 2026-Q4) or --since/--until"),
        (["--since", "yesterday"], "'yesterday' is not a date or date-time"),
        (["--since", "2026-12-01", "--until", "2026-11-01"], "the period ends before it starts"),
    ],
)
def test_bad_periods_are_clear_errors(db, tmp_path, args, message):
    path = tmp_path / "pack.zip"
    with pytest.raises(CommandError) as caught:
        call_command("evidence_pack", *args, "--output", str(path))
    assert message in str(caught.value)
    assert (
        not path.exists()
        and not AuditEvent.objects.filter(action=Action.AUDIT_EVIDENCE_PACK).exists()
    )


def test_no_signing_key_no_pack(db, tmp_path, monkeypatch, settings):
    offline(monkeypatch, settings)
    path = tmp_path / "pack.zip"
    with pytest.raises(CommandError, match="evidence packs are signed"):
        build(path)
    assert not path.exists()
    assert not AuditEvent.objects.filter(action=Action.AUDIT_EVIDENCE_PACK).exists()


@pytest.mark.parametrize(
    "text, since, until",
    [
        ("2026-Q4", "2026-10-01T00:00:00+00:00", "2026-12-31T23:59:59.999999+00:00"),
        ("2024-02", "2024-02-01T00:00:00+00:00", "2024-02-29T23:59:59.999999+00:00"),
        ("2025", "2025-01-01T00:00:00+00:00", "2025-12-31T23:59:59.999999+00:00"),
    ],
)
def test_periods_cover_whole_days_in_utc(text, since, until):
    period = parse_period(text)
    assert (period.since.isoformat(), period.until.isoformat()) == (since, until)


def test_the_audit_page_downloads_the_pack(catalog, people, client, public_key, tmp_path, settings):
    settings.AIRLOCK_WITNESS_BUCKET = ""
    client.force_login(people.dave)
    page = client.get("/audit/")
    assert b"Download the evidence pack" in page.content and PERIOD.encode() in page.content
    response = client.post("/audit/evidence-pack/", {"period": PERIOD})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert f'filename="airlock-evidence-{PERIOD}.zip"' in response["Content-Disposition"]
    path = tmp_path / "downloaded.zip"
    path.write_bytes(b"".join(response.streaming_content))
    assert verify(path, public_key).endswith("verified\n")
    event = AuditEvent.objects.get(action=Action.AUDIT_EVIDENCE_PACK)
    assert event.actor == "dave" and event.source == "web"
    bad = client.post("/audit/evidence-pack/", {"period": "soon"})
    assert bad.status_code == 400 and b"is not a period" in bad.content
