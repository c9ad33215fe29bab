"""Auditors read and export the audit trail through the API."""

import csv
import io
import json

import pytest

from audit.export import read_export
from audit.models import AuditEvent
from audit.trail import check_links


def test_dave_lists_events_newest_first_with_filters(api, people, submit):
    submit(people.alice)
    dave = api(people.dave)
    body = dave.get("/api/v1/audit/events/").json()
    seqs = [row["seq"] for row in body["results"]]
    assert seqs == sorted(seqs, reverse=True) and body["count"] == AuditEvent.objects.count()
    mine = dave.get("/api/v1/audit/events/", {"actor": "alice", "action": "request."}).json()
    assert [row["action"] for row in mine["results"]] == ["request.submitted"]
    by_profile = dave.get("/api/v1/audit/events/", {"profile": "test-db"}).json()
    assert by_profile["count"] == 1
    page = dave.get("/api/v1/audit/events/", {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]


def test_bad_filters_are_a_400(api, people, catalog):
    dave = api(people.dave)
    for params in ({"since": "yesterday"}, {"source": "carrier-pigeon"}):
        response = dave.get("/api/v1/audit/events/", params)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid"
    assert dave.get("/api/v1/audit/events/", {"page": 999}).status_code == 404


def test_export_streams_a_verifiable_chain_and_is_itself_audited(api, people, submit):
    submit(people.alice)
    dave = api(people.dave)
    response = dave.get("/api/v1/audit/export/", {"format": "jsonl"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    lines = b"".join(response.streaming_content).decode().splitlines(keepends=True)
    events = list(read_export(lines, "jsonl"))
    first = json.loads(lines[0])
    report = check_links(events, first_seq=first["seq"], prev_hash=first["prev_hash"])
    assert report.intact and report.count == len(lines)
    exported = AuditEvent.objects.filter(action="audit.exported").last()
    assert exported.source == "api" and exported.data["format"] == "jsonl"


def test_csv_export_with_a_range(api, people, submit):
    submit(people.alice)
    response = api(people.dave).get(
        "/api/v1/audit/export/", {"format": "csv", "since": "2000-01-01", "action": "request."}
    )
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["action"] for row in rows] == ["request.submitted"]


def test_an_unknown_export_format_is_a_400(api, people, catalog):
    response = api(people.dave).get("/api/v1/audit/export/", {"format": "xlsx"})
    assert response.status_code == 400
    assert "format" in response.json()["error"]["fields"]
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_a_range_export_and_its_manifest_verify_offline(api, people, submit, tmp_path):
    from audit.manifest import verify_export

    submit(people.alice)
    dave = api(people.dave)
    response = dave.get("/api/v1/audit/export/", {"format": "csv", "since": "2000-01-01"})
    through = response["X-Airlock-Through-Seq"]
    exported = tmp_path / "audit.csv"
    exported.write_bytes(b"".join(response.streaming_content))
    submit(people.alice, slug="vault-token")  # later events do not change that export
    manifest = dave.get(
        "/api/v1/audit/manifest/", {"format": "csv", "since": "2000-01-01", "through_seq": through}
    ).json()
    assert manifest["last_seq"] == int(through)
    (tmp_path / "audit.csv.manifest.json").write_text(json.dumps(manifest))
    assert verify_export(exported).intact
    lines = exported.read_text().splitlines(keepends=True)
    exported.write_text("".join(lines[:-1]))  # the last event dropped
    assert "removed from the end" in verify_export(exported).error


@pytest.mark.parametrize("path", ["/api/v1/audit/export/", "/api/v1/audit/manifest/"])
def test_a_through_seq_of_digits_python_cannot_read_is_a_400(api, people, submit, path):
    submit(people.alice)
    response = api(people.dave).get(path, {"since": "2000-01-01", "through_seq": "1\u00b2"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"through_seq": "a sequence number"}


def test_filtered_exports_are_not_sealed(api, people, submit):
    submit(people.alice)
    dave = api(people.dave)
    response = dave.get("/api/v1/audit/export/", {"actor": "alice"})
    assert "X-Airlock-Through-Seq" not in response
    refused = dave.get("/api/v1/audit/manifest/", {"actor": "alice", "through_seq": "5"})
    assert refused.status_code == 400 and "actor" in refused.json()["error"]["fields"]


def test_without_a_sealing_key_a_manifest_is_a_clear_503(api, people, submit, monkeypatch):
    submit(people.alice)
    for name in ("AIRLOCK_EXPORT_HMAC_KEY", "AIRLOCK_AUDIT_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    response = api(people.dave).get(
        "/api/v1/audit/manifest/", {"since": "2000-01-01", "through_seq": head}
    )
    assert response.status_code == 503
    assert response.json()["error"] == {
        "code": "not_configured",
        "message": "set AIRLOCK_AUDIT_SIGNING_KEY (or _FILE), an Ed25519 private key in PEM, "
        "or AIRLOCK_EXPORT_HMAC_KEY (or _FILE)",
        "fields": {},
    }
