"""export_audit and the auditor page's exports: csv, jsonl and ocsf, complete,
filtered by time, private to the owner, and audited themselves."""

import csv
import io
import json
import os
import stat
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from audit.export import FORMULA_STARTS, csv_rows, read_export
from audit.models import AuditEvent
from broker import lifecycle
from tests.support.people import WEB


@pytest.fixture
def history(people, submit, step_up):
    request = submit(people.alice, reason="=cmd|' /C calc'!A0")
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.id, approver=people.bob, info=WEB)
    return AuditEvent.objects.order_by("seq")


def export(tmp_path, fmt: str, *args: str) -> str:
    out = tmp_path / f"audit.{fmt}"
    call_command("export_audit", "--format", fmt, "--output", str(out), *args)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    return out.read_text()


def test_csv_has_every_event_in_order_and_no_formulas(history, tmp_path):
    expected = [e.seq for e in history]
    rows = list(csv.DictReader(export(tmp_path, "csv").splitlines()))
    assert [int(r["seq"]) for r in rows][: len(expected)] == expected
    submitted = next(r for r in rows if r["action"] == "request.submitted")
    assert submitted["reason"].startswith("'=cmd")
    assert rows[-1]["action"] == "audit.exported"  # the export records itself


def test_jsonl_round_trips_every_field(history, tmp_path):
    lines = [json.loads(line) for line in export(tmp_path, "jsonl").splitlines()]
    first = history.first()
    assert lines[0]["hash"] == first.hash and lines[0]["prev_hash"] == first.prev_hash
    assert lines[0]["created_at"] == first.created_at.isoformat()
    assert {line["action"] for line in lines} >= {"request.submitted", "request.approved"}


def test_ocsf_maps_classes_and_keeps_the_original(history, tmp_path):
    lines = [json.loads(line) for line in export(tmp_path, "ocsf").splitlines()]
    by_action = {line["message"]: line for line in lines}
    approved = by_action["request.approved"]
    assert (approved["class_uid"], approved["category_uid"]) == (3005, 3)
    assert approved["type_uid"] == 3005 * 100 + approved["activity_id"]
    assert approved["actor"]["user"]["name"] == "bob"
    assert approved["metadata"]["uid"] == approved["unmapped"]["hash"]
    assert approved["src_endpoint"] == {"ip": "203.0.113.7"}
    mfa = by_action["mfa.verified"]  # a step-up in a session, not a new logon: Other
    assert (mfa["class_uid"], mfa["activity_id"], mfa["status_id"]) == (3002, 99, 1)
    assert isinstance(approved["time"], int)


def test_since_and_until_bound_the_export(history, tmp_path, capsys):
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert export(tmp_path, "jsonl", "--since", tomorrow) == ""
    assert "exported 0 event(s) as jsonl" in capsys.readouterr().err
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert export(tmp_path, "jsonl", "--until", yesterday) == ""
    today = timezone.now().date().isoformat()
    assert len(export(tmp_path, "jsonl", "--since", today, "--until", today).splitlines()) > 3


def test_bad_input_is_a_clear_error(db, tmp_path):
    out = str(tmp_path / "x.csv")
    with pytest.raises(CommandError, match="not a date"):
        call_command("export_audit", "--since", "last tuesday", "--output", out)
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("export_audit", "--format", "xml", "--output", out)
    with pytest.raises(CommandError, match="No such file"):
        call_command("export_audit", "--output", str(tmp_path / "missing" / "x.csv"))


# Each a moment Python reads, but beyond its calendar once in UTC.
BEYOND_UTC = ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"]


@pytest.mark.parametrize("moment", BEYOND_UTC)
def test_a_moment_beyond_the_calendar_in_utc_is_a_clear_error(db, tmp_path, moment):
    out = str(tmp_path / "x.csv")
    with pytest.raises(CommandError, match="out of range"):
        call_command("export_audit", "--since", moment, "--output", out)


@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize("moment", BEYOND_UTC)
def test_the_api_answers_400_to_a_moment_beyond_the_calendar_in_utc(
    api, people, history, field, moment
):
    """The manifest's range is written in UTC: the conversion overflowed (a 500)."""
    dave = api(people.dave)
    for path in ("/api/v1/audit/export/", "/api/v1/audit/manifest/"):
        response = dave.get(path, {field: moment, "through_seq": "1"})
        assert response.status_code == 400, path
        assert "out of range" in response.json()["error"]["message"], path


@pytest.mark.parametrize(
    ("fmt", "content_type"), [("jsonl", "application/x-ndjson"), ("ocsf", "application/x-ndjson")]
)
def test_the_auditor_page_exports_each_format(client, people, history, fmt, content_type):
    client.force_login(people.dave)
    response = client.get(f"/audit/export/?format={fmt}&actor=bob")
    assert response["Content-Type"] == content_type
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    actors = {line["actor"] if fmt == "jsonl" else line["actor"]["user"]["name"] for line in lines}
    assert actors == {"bob"}
    assert client.get("/audit/export/?format=xml").status_code == 400


def a_record(**fields) -> dict:
    record = {
        "seq": 7, "created_at": "2026-11-29T09:05:01.000000+00:00", "actor": "alice",
        "actor_id": 3, "actor_external": "", "action": "request.submitted",
        "target_type": "accessrequest", "target_id": "6f1c", "target_external": "",
        "from_status": "", "to_status": "pending", "reason": "",
        "source": "web", "ip": "203.0.113.7", "user_agent": "", "data": {"note": ""},
        "prev_hash": "a" * 64, "hash": "b" * 64,
    }  # fmt: skip
    return record | fields


@pytest.mark.parametrize(
    "reason",
    ["'=1+1", "'", "''", "'=", "'plain", "'\t", *FORMULA_STARTS, "=1+1", "-1", "@SUM(A1)"],
)
def test_every_formula_prefix_and_leading_quote_round_trips(reason):
    record = a_record(reason=reason, user_agent=reason)
    written = "".join(csv_rows([record]))
    row = next(csv.DictReader(written.splitlines(keepends=True)))
    assert not row["reason"].startswith(FORMULA_STARTS)  # never a formula to a spreadsheet
    assert list(read_export(written.splitlines(keepends=True), "csv")) == [record]


# Arbitrary text, often starting the way spreadsheets or the escaping itself care about.
awkward_starts = st.sampled_from(["", "'", "''", *FORMULA_STARTS])
awkward_text = st.tuples(awkward_starts, awkward_starts, st.text()).map("".join)


@given(text=awkward_text, key=awkward_text)
def test_any_text_round_trips_through_csv(text, key):
    record = a_record(reason=text, actor=text, target_id=text, user_agent=text, data={key: text})
    written = "".join(csv_rows([record]))
    for cell in next(csv.reader(written.splitlines(keepends=True)[1:])):
        assert not cell.startswith(FORMULA_STARTS)
    assert list(read_export(io.StringIO(written, newline=""), "csv")) == [record]
