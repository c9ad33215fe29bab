from argparse import ArgumentParser
from datetime import datetime

from django.core.management.base import CommandError

from audit.export import parse_range


def add_time_range_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--since", help="first day or moment (ISO 8601, UTC if no zone)")
    parser.add_argument("--until", help="last day or moment (inclusive)")


def time_range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """--since/--until as moments: a date covers its whole day."""
    try:
        return parse_range(since, until)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
