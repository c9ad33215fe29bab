"""Audit exports mark third parties: the person acting (`actor_external`) and the
account acted on (`target_external`) carry their company in every format, and the
marks, which the chain does not hash, leave the export verifiable offline."""

import csv
import json
from datetime import timedelta

import pytest
from django.core.management import call_command

from broker import lifecycle
from broker.models import AccessProfile
from tests.support.externals import invite_zoe, open_test_db_to_externals
from tests.support.people import WEB


@pytest.fixture
def zoe_asked(catalog, people, step_up):
    """zoe of Acme, invited by alice, asks for test-db."""
    open_test_db_to_externals()
    access, _ = invite_zoe(people, step_up)
    lifecycle.access_request_submit(
        requester=access.user, profile=AccessProfile.objects.get(slug="test-db"),
        duration=timedelta(minutes=30), reason="vendor maintenance", info=WEB,
    )  # fmt: skip
    return access.user


def export(tmp_path, fmt: str) -> str:
    out = tmp_path / f"audit.{fmt}"
    call_command("export_audit", "--format", fmt, "--output", str(out), "--since", "2000-01-01")
    return out


def by_action(rows: list[dict], action: str) -> dict:
    return next(row for row in rows if row["action"] == action)


def test_csv_marks_the_third_party_acting_and_acted_on(zoe_asked, tmp_path):
    rows = list(csv.DictReader(export(tmp_path, "csv").read_text().splitlines()))
    submitted = by_action(rows, "request.submitted")
    assert (submitted["actor"], submitted["actor_external"]) == ("zoe", "Acme")
    invited = by_action(rows, "external.invited")  # alice acts on zoe's account
    assert (invited["actor"], invited["actor_external"]) == ("alice", "")
    assert (invited["target_type"], invited["target_external"]) == ("user", "Acme")
    employees = [row for row in rows if row["actor"] in {"alice", "bob"}]
    assert employees and all(row["actor_external"] == "" for row in employees)


def test_json_lines_and_ocsf_carry_the_same_marks(zoe_asked, tmp_path):
    lines = [json.loads(line) for line in export(tmp_path, "jsonl").read_text().splitlines()]
    submitted = by_action(lines, "request.submitted")
    assert (submitted["actor_external"], submitted["target_external"]) == ("Acme", "")

    events = [json.loads(line) for line in export(tmp_path, "ocsf").read_text().splitlines()]
    by_message = {event["message"]: event for event in events}
    accepted = by_message["external.accepted"]
    assert accepted["actor"]["user"] == {
        "name": "zoe", "uid": str(zoe_asked.pk), "org": {"name": "Acme"},
    }  # fmt: skip
    assert "org" not in by_message["external.invited"]["actor"]["user"]  # alice, staff


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "ocsf"])
def test_a_marked_export_verifies_offline(zoe_asked, tmp_path, fmt):
    # The chain check reads the hashed fields; the manifest's digest seals the
    # whole file, marks included.
    path = export(tmp_path, fmt)
    assert "Acme" in path.read_text()
    call_command("verify_audit", "--export", str(path))
