"""Audit events as CSV, streamed row by row so any size fits in constant memory."""

import csv
import json
from collections.abc import Iterable, Iterator

from broker.models import AuditEvent

CSV_COLUMNS = [
    "seq", "created_at", "actor", "actor_id", "action", "target_type", "target_id",
    "from_status", "to_status", "reason", "source", "ip", "user_agent", "data",
    "prev_hash", "hash",
]  # fmt: skip
# A cell starting with one of these is a formula to spreadsheet programs; the
# reason and ticket fields are typed by users, so neutralise them.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    if value is None:
        return ""
    text = json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_rows(events: Iterable[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in events:
        row = [_cell(getattr(event, column)) for column in CSV_COLUMNS]
        row[1] = event.created_at.isoformat()
        yield writer.writerow(row)
