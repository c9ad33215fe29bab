"""Exports prove themselves: verify_audit --export checks a file against its
manifest's HMAC and its own chain, offline, and names what was done to it."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import trail
from audit.export import FORMULA_STARTS
from broker import lifecycle
from tests.support.people import WEB


@pytest.fixture
def exported(people, submit, step_up, tmp_path):
    """Paths of a fresh export in each format (made with database access)."""
    for _ in range(2):
        request = submit(people.alice)
        lifecycle.access_request_cancel(request_id=request.id, actor=people.alice, info=WEB)
    step_up(people.bob)
    paths = {}
    for fmt in ("csv", "jsonl", "ocsf"):
        paths[fmt] = tmp_path / f"audit.{fmt}"
        call_command(
            "export_audit", "--format", fmt, "--output", str(paths[fmt]), "--since", "2000-01-01"
        )
    return paths


def verify(path) -> str:
    """Run the offline check; the test has no database access from here on."""
    try:
        call_command("verify_audit", "--export", str(path))
    except CommandError as exc:
        return str(exc)
    return "intact"


def body_lines(path) -> tuple[list[str], list[str]]:
    lines = path.read_text().splitlines(keepends=True)
    return (lines[:1], lines[1:]) if path.suffix == ".csv" else ([], lines)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "ocsf"])
def test_an_untouched_export_verifies_and_each_tampering_is_named(
    exported, fmt, capsys, django_assert_num_queries
):
    path = exported[fmt]
    manifest = json.loads(path.with_name(path.name + ".manifest.json").read_text())
    assert manifest["count"] >= 6 and manifest["first_seq"] == 1
    assert len(manifest["hmac_sha256"]) == 64
    with django_assert_num_queries(0):  # offline: the file and its manifest only
        assert verify(path) == "intact"
    assert f"{manifest['count']} event(s)" in capsys.readouterr().out
    original = path.read_bytes()
    head, body = body_lines(path)

    # Flip one byte in a chained field of one event.
    field = b",pending,cancelled," if fmt == "csv" else b'"to_status":"cancelled"'
    assert field in original
    path.write_bytes(original.replace(field, field.replace(b"cancelled", b"cancelleD"), 1))
    problem = verify(path)
    assert "does not match its manifest" in problem
    assert "was changed after it was written" in problem

    path.write_text("".join(head + body[:3] + body[4:]))  # drop one event
    assert "event #4 is missing (deleted or moved) before event #5" in verify(path)

    path.write_text("".join(head + body[:3] + [body[4], body[3]] + body[5:]))  # swap two
    assert "(deleted or moved)" in verify(path)

    path.write_text("".join(head + body[:-1]))  # drop the last one
    assert "removed from the end" in verify(path)

    path.write_bytes(original)
    assert verify(path) == "intact"


def test_a_different_key_fails_the_seal(exported, monkeypatch):
    monkeypatch.delenv("AIRLOCK_EXPORT_HMAC_KEY_FILE", raising=False)
    monkeypatch.setenv("AIRLOCK_EXPORT_HMAC_KEY", "another-key")
    assert "HMAC does not match" in verify(exported["jsonl"])


def test_a_partial_time_range_verifies_from_its_first_event(people, submit, tmp_path):
    submit(people.alice)
    path = tmp_path / "today.jsonl"
    call_command(
        "export_audit", "--format", "jsonl", "--output", str(path), "--since", "2000-01-01"
    )
    lines = path.read_text().splitlines(keepends=True)
    # Keep the tail only and re-export it as its own range: the manifest starts mid-chain.
    first = json.loads(lines[2])
    call_command(
        "export_audit", "--format", "jsonl", "--output", str(path), "--since", first["created_at"]
    )
    assert verify(path) == "intact"


def test_a_missing_manifest_or_file_is_a_clear_error(tmp_path):
    (tmp_path / "lonely.jsonl").write_text("{}\n")
    assert "cannot check" in verify(tmp_path / "lonely.jsonl")
    assert "cannot check" in verify(tmp_path / "absent.jsonl")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "ocsf"])
def test_awkward_event_data_exports_and_verifies(db, tmp_path, fmt):
    """Text beyond ASCII, a number beyond 64 bits (which the fast encoder refuses),
    floats, nesting and a formula-like string all survive the round trip."""
    data = {"note": "Zürich ✓ \u2028", "big": 2**70, "nested": {"b": 1.5, "a": [None, "=1+1"]}}
    with transaction.atomic():
        trail.record(action="catalog.synced", info=trail.SYSTEM, reason="-x", data=data)
    path = tmp_path / f"audit.{fmt}"
    call_command("export_audit", "--format", fmt, "--output", str(path))
    assert verify(path) == "intact"


@pytest.mark.parametrize("reason", ["'=cmd|' /C calc'!A0", "'", "''+1", "'plain", "=1+1"])
def test_a_reason_starting_with_a_quote_exports_to_csv_and_verifies(
    people, submit, tmp_path, reason
):
    submit(people.alice, reason=reason)
    path = tmp_path / "audit.csv"
    call_command("export_audit", "--output", str(path))
    assert verify(path) == "intact"


# What PostgreSQL can store: any text but NUL (and no lone surrogates, which UTF-8 cannot
# hold), often starting the way spreadsheets or the CSV escaping itself care about.
stored_text = st.tuples(
    st.sampled_from(["", "'", "''", *FORMULA_STARTS]),
    st.sampled_from(["", "'", *FORMULA_STARTS]),
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
).map("".join)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(reason=stored_text, note=stored_text)
def test_any_text_exports_to_csv_and_verifies(db, tmp_path, reason, note):
    with transaction.atomic():
        trail.record(action="catalog.synced", info=trail.SYSTEM, reason=reason, data={note: note})
    path = tmp_path / "audit.csv"
    call_command("export_audit", "--output", str(path))
    assert verify(path) == "intact"
