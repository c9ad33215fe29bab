"""A sealed export states exactly the range it covers (since, until, the chain's
head it was pinned to, first and last event), and cannot leave out events of
that range and still verify: the seals cover every field of the manifest, and
the verifier checks each event of the file against the range stated."""

import hashlib
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from audit import trail
from audit.export import parse_moment, read_export
from audit.models import AuditEvent


@pytest.fixture
def history(db):
    """A few events, each a moment after the one before."""
    for number in range(4):
        with transaction.atomic():
            trail.record(action="catalog.synced", info=trail.SYSTEM, data={"number": number})
    return list(AuditEvent.objects.order_by("seq"))


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def export(path: Path, *args: str) -> dict:
    call_command("export_audit", "--format", "jsonl", "--output", str(path), *args)
    return json.loads(manifest_path(path).read_text())


def rewrite_manifest(path: Path, manifest: dict) -> None:
    manifest_path(path).write_text(json.dumps(manifest))


def verify(path: Path) -> str:
    try:
        call_command("verify_audit", "--export", str(path))
    except CommandError as exc:
        return str(exc)
    return "intact"


def seqs_in(path: Path, fmt: str = "jsonl") -> list[int]:
    with open(path, encoding="utf-8", newline="") as lines:
        return [event["seq"] for event in read_export(lines, fmt)]


def promised(manifest: dict) -> list[int]:
    """Every stored event the manifest says its file holds."""
    events = AuditEvent.objects.filter(seq__lte=manifest["through_seq"])
    if manifest["since"]:
        events = events.filter(created_at__gte=parse_moment(manifest["since"], end_of_day=False))
    if manifest["until"]:
        events = events.filter(created_at__lte=parse_moment(manifest["until"], end_of_day=True))
    return list(events.order_by("seq").values_list("seq", flat=True))


def moment(event: AuditEvent) -> str:
    return event.created_at.isoformat()


@pytest.mark.parametrize(
    "bounds",
    [(), ("--since", "2000-01-01"), ("--since", 2), ("--until", 2), ("--since", 1, "--until", 3)],
)
def test_the_manifest_states_exactly_what_the_file_holds(history, tmp_path, bounds):
    args = [moment(history[arg]) if isinstance(arg, int) else arg for arg in bounds]
    path = tmp_path / "audit.jsonl"
    manifest = export(path, *args)
    assert promised(manifest) == seqs_in(path)
    assert manifest["through_seq"] == AuditEvent.objects.latest("seq").seq
    assert verify(path) == "intact"


def test_a_later_export_relabelled_as_the_whole_range_fails(history, tmp_path):
    """The first events of the range left out: a genuine export that starts later,
    with the manifest of the whole range's start."""
    whole = export(tmp_path / "whole.jsonl", "--since", "2000-01-01")
    later_path = tmp_path / "later.jsonl"
    later = export(later_path, "--since", moment(history[2]))
    assert later["first_seq"] > whole["first_seq"]
    rewrite_manifest(later_path, {**later, "since": whole["since"]})
    assert verify(later_path) != "intact"


def test_an_earlier_export_relabelled_with_a_later_end_fails(history, tmp_path):
    """The last events of the range left out: a genuine export that ends earlier,
    with its end moved."""
    path = tmp_path / "early.jsonl"
    early = export(path, "--until", moment(history[1]))
    assert early["last_seq"] == history[1].seq
    rewrite_manifest(path, {**early, "until": ""})
    assert verify(path) != "intact"


def test_first_events_dropped_with_the_manifest_adjusted_fail(history, tmp_path):
    path = tmp_path / "audit.jsonl"
    manifest = export(path)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[2:]))
    second_kept = json.loads(lines[2])
    rewrite_manifest(
        path,
        {
            **manifest,
            "count": manifest["count"] - 2,
            "first_seq": second_kept["seq"],
            "first_prev_hash": second_kept["prev_hash"],
            "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        },
    )
    assert verify(path) != "intact"


CHANGES = {
    "version": lambda value: value + 1,
    "format": lambda value: "ocsf",
    "since": lambda value: "1999-01-01T00:00:00.000000+00:00",
    "until": lambda value: "2999-01-01T00:00:00.000000+00:00",
    "through_seq": lambda value: value + 1000,
    "count": lambda value: value - 1,
    "first_seq": lambda value: value + 1,
    "last_seq": lambda value: value - 1,
    "first_prev_hash": lambda value: "f" * 64,
    "last_hash": lambda value: "f" * 64,
    "file_sha256": lambda value: "f" * 64,
    "key_id": lambda value: "0" * 16,
    "signed_at": lambda value: "2000-01-01T00:00:00.000000+00:00",
}


def test_every_field_of_the_manifest_is_sealed(history, tmp_path):
    path = tmp_path / "audit.jsonl"
    manifest = export(path, "--since", "2000-01-01")
    assert set(manifest) == {*CHANGES, "signature", "hmac_sha256"}
    for field, change in CHANGES.items():
        rewrite_manifest(path, {**manifest, field: change(manifest[field])})
        problem = verify(path)
        expected = "not a version 2 or 3 manifest" if field == "version" else "HMAC does not match"
        assert expected in problem, field
    rewrite_manifest(path, manifest)
    assert verify(path) == "intact"


def test_events_outside_the_stated_range_are_named(history, tmp_path):
    """Even under a good seal (an Airlock bug, or the key holder's mistake), the
    verifier checks each event against the range the manifest states."""
    from audit.manifest import Manifest, seal, sealing_keys

    path = tmp_path / "audit.jsonl"
    manifest = Manifest(**export(path))
    manifest.since = moment(history[1])
    seal(manifest, *sealing_keys())
    rewrite_manifest(path, manifest.__dict__)
    assert f"event #{history[0].seq} was created before the range's start" in verify(path)

    manifest = Manifest(**export(path))
    manifest.through_seq = history[1].seq
    seal(manifest, *sealing_keys())
    rewrite_manifest(path, manifest.__dict__)
    assert "comes after the chain's head the export was pinned to" in verify(path)


def test_an_empty_range_states_where_the_chain_stood(history, tmp_path):
    path = tmp_path / "audit.jsonl"
    manifest = export(path, "--since", "2999-01-01")
    assert manifest["count"] == 0 and manifest["first_seq"] is None
    assert manifest["through_seq"] == AuditEvent.objects.latest("seq").seq
    assert verify(path) == "intact"


def test_a_manifest_that_does_not_seal_its_range_is_refused_clearly(history, tmp_path):
    """Manifests of an older Airlock sealed the file's bytes only."""
    path = tmp_path / "audit.jsonl"
    manifest = export(path)
    legacy = {k: v for k, v in manifest.items() if k not in ("version", "through_seq")}
    rewrite_manifest(path, legacy)
    assert "does not seal the range it states" in verify(path)


# --- through the API ---------------------------------------------------------


@pytest.fixture
def dave(api, catalog, people):
    """The auditor, through the API."""
    return api(people.dave)


def api_export(client, tmp_path: Path, params: dict) -> tuple[Path, dict]:
    response = client.get("/api/v1/audit/export/", {"format": "csv", **params})
    assert response.status_code == 200
    path = tmp_path / "api.csv"
    path.write_bytes(b"".join(response.streaming_content))
    through = response["X-Airlock-Through-Seq"]
    manifest = client.get(
        "/api/v1/audit/manifest/", {"format": "csv", **params, "through_seq": through}
    ).json()
    rewrite_manifest(path, manifest)
    return path, manifest


def test_an_api_export_pinned_before_the_end_of_its_range_says_so(dave, history, tmp_path):
    path, manifest = api_export(
        dave, tmp_path, {"since": "2000-01-01", "through_seq": history[1].seq}
    )
    assert manifest["through_seq"] == history[1].seq
    assert seqs_in(path, "csv") == promised(manifest) == [history[0].seq, history[1].seq]
    assert verify(path) == "intact"


def test_an_api_export_states_the_range_it_covers(dave, history, tmp_path):
    params = {"since": moment(history[1]), "until": moment(history[2])}
    path, manifest = api_export(dave, tmp_path, params)
    assert seqs_in(path, "csv") == promised(manifest) == [history[1].seq, history[2].seq]
    assert verify(path) == "intact"


@pytest.mark.parametrize("endpoint", ["export", "manifest"])
def test_a_through_seq_beyond_the_head_is_refused(dave, history, endpoint):
    head = AuditEvent.objects.latest("seq").seq
    response = dave.get(
        f"/api/v1/audit/{endpoint}/", {"since": "2000-01-01", "through_seq": head + 50}
    )
    assert response.status_code == 400
    assert "through_seq" in response.json()["error"]["fields"]


def test_a_filtered_export_does_not_verify_as_its_whole_range(dave, history, tmp_path):
    response = dave.get("/api/v1/audit/export/", {"format": "csv", "action": "request."})
    path = tmp_path / "filtered.csv"
    path.write_bytes(b"".join(response.streaming_content))
    through = AuditEvent.objects.latest("seq").seq - 1  # before this export's own event
    manifest = dave.get("/api/v1/audit/manifest/", {"format": "csv", "through_seq": through})
    rewrite_manifest(path, manifest.json())
    assert verify(path) != "intact"
