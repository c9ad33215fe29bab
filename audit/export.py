"""Audit events as CSV, JSON Lines or OCSF, streamed row by row so that any
number of events fits in constant memory."""

import csv
import json
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, time
from typing import Any

import orjson
from django.utils.dateparse import parse_date, parse_datetime

from audit.actions import Action

CSV_COLUMNS = [
    "seq", "created_at", "actor", "actor_id", "action", "target_type", "target_id",
    "from_status", "to_status", "reason", "source", "ip", "user_agent", "data",
    "prev_hash", "hash",
]  # fmt: skip
# A cell starting with one of these is a formula to spreadsheet programs; the
# reason and ticket fields are typed by users, so neutralise them with a leading
# quote. A value that starts with the quote itself gets one too, so that reading
# drops exactly one quote from every cell starting with it and gets back what was
# written: an exported file must verify against the chain's hashes.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_ESCAPE = "'"
OCSF_VERSION = "1.3.0"


def parse_moment(text: str, *, end_of_day: bool) -> datetime:
    """An ISO date (the whole day: its start, or with end_of_day its end) or an
    ISO date-time, in UTC; naive times are UTC. ValueError names what is wrong."""
    try:
        day = parse_date(text)
        parsed = (
            datetime.combine(day, time.max if end_of_day else time.min)
            if day is not None
            else parse_datetime(text)
        )
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"{text!r} is not a date or date-time (ISO 8601, e.g. 2026-11-28)")
    try:
        # In UTC, as exports and manifests state it: 0001-01-01T00:00+05:00 is not a day
        # Python's calendar holds.
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range once in UTC") from None


def parse_range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """A since/until pair as moments (either may be empty): a date covers its whole
    day. ValueError names what is wrong; each caller says it its own way."""
    return (
        parse_moment(since, end_of_day=False) if since else None,
        parse_moment(until, end_of_day=True) if until else None,
    )


def open_private(path: str, mode: str = "w"):
    """Open a new file readable by its owner only: audit exports and access reports
    name people and addresses."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), mode)


class Echo:
    def write(self, value: str) -> str:
        return value


def json_text(value: Any, *, line: bool = False) -> str:
    """JSON with sorted keys, as exports write it. orjson encodes four to eight
    times faster than the standard library (bench/README.md, exports); a number
    beyond 64 bits, which it refuses, goes through the standard library. The
    hash chain's own canonical form stays `audit.payload_hash`'s."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text + "\n" if line else text


def csv_cell(value) -> str:
    if value is None:
        return ""
    text = json_text(value) if isinstance(value, dict) else str(value)
    return CSV_ESCAPE + text if text.startswith((*FORMULA_STARTS, CSV_ESCAPE)) else text


# Rows take the records of `audit.event_records`: every hashed field as the chain
# hashed it, plus the hash, so that each exported event can be re-verified.
Record = dict[str, Any]


def csv_rows(records: Iterable[Record]) -> Iterator[str]:
    writer = csv.writer(Echo())
    yield writer.writerow(CSV_COLUMNS)
    for record in records:
        yield writer.writerow([csv_cell(record[column]) for column in CSV_COLUMNS])


def jsonl_rows(records: Iterable[Record]) -> Iterator[str]:
    for record in records:
        yield json_text(record, line=True)


def ocsf_event(record: Record) -> dict[str, Any]:
    """One event in the Open Cybersecurity Schema Framework (IAM category).

    Sign-ins and MFA are Authentication (3002); everything else is User Access
    Management (3005): a grant becoming active assigns privileges, a grant
    ending revokes them. The original event rides along under `unmapped`.
    """
    action = record["action"]
    if action.startswith(("auth.", "mfa.")):
        class_uid, class_name = 3002, "Authentication"
        activity_id = 1 if action in (Action.AUTH_LOGIN, Action.MFA_VERIFIED) else 99
        failed = action.endswith("failed")
    else:
        class_uid, class_name = 3005, "User Access Management"
        activity_id = {
            Action.GRANT_ACTIVATED: 1,
            Action.GRANT_REVOKED: 2,
            Action.GRANT_EXPIRED: 2,
        }.get(action, 99)
        failed = action in (Action.GRANT_FAILED, Action.GRANT_REVOKE_FAILED)
    ocsf: dict[str, Any] = {
        "category_uid": 3,
        "category_name": "Identity & Access Management",
        "class_uid": class_uid,
        "class_name": class_name,
        "activity_id": activity_id,
        "type_uid": class_uid * 100 + activity_id,
        "time": int(datetime.fromisoformat(record["created_at"]).timestamp() * 1000),
        "severity_id": 4 if action == Action.GRANT_REVOKE_FAILED else 1,
        "status_id": 2 if failed else 1,
        "message": action,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "Airlock", "vendor_name": "Airlock"},
            "uid": record["hash"],
            "sequence": record["seq"],
            "log_name": "airlock-audit",
        },
        "actor": {
            "user": {"name": record["actor"] or "airlock", "uid": str(record["actor_id"] or "")}
        },
        "unmapped": record,
    }
    if record["ip"]:
        ocsf["src_endpoint"] = {"ip": record["ip"]}
    if record["user_agent"]:
        ocsf["http_request"] = {"user_agent": record["user_agent"]}
    return ocsf


def ocsf_rows(records: Iterable[Record]) -> Iterator[str]:
    for record in records:
        yield json_text(ocsf_event(record), line=True)


# format -> (rows, content type, file extension)
FORMATS: dict[str, tuple[Callable[[Iterable[Record]], Iterator[str]], str, str]] = {
    "csv": (csv_rows, "text/csv", "csv"),
    "jsonl": (jsonl_rows, "application/x-ndjson", "jsonl"),
    "ocsf": (ocsf_rows, "application/x-ndjson", "ocsf.jsonl"),
}


def read_export(lines: Iterable[str], export_format: str) -> Iterator[dict[str, Any]]:
    """The events of an exported file, as the dicts the chain check takes."""
    if export_format == "csv":
        for row in csv.DictReader(lines):
            yield _from_csv(row)
        return
    for line in lines:
        if line.strip():
            record = json.loads(line)
            yield record["unmapped"] if export_format == "ocsf" else record


def _from_csv(row: dict[str, str]) -> dict[str, Any]:
    record: dict[str, Any] = {
        column: value.removeprefix(CSV_ESCAPE) for column, value in row.items()
    }
    record["seq"] = int(record["seq"])
    record["actor_id"] = int(record["actor_id"]) if record["actor_id"] else None
    record["ip"] = record["ip"] or None
    record["data"] = json.loads(record["data"]) if record["data"] else {}
    return record
