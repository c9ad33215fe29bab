import sys

from django.core.management.base import BaseCommand, CommandError

from broker.access_report import as_csv, as_json, report_rows
from broker.audit_export import open_private, parse_moment


class Command(BaseCommand):
    help = (
        "Every grant that gave access in a time range, with requester, profile, approvers "
        "and their MFA, reason, ticket, start, end and how it ended: for access reviews."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", help="first day or moment (ISO 8601, UTC if no zone)")
        parser.add_argument("--until", help="last day or moment (inclusive)")
        parser.add_argument("--format", choices=["csv", "json"], default="csv")
        parser.add_argument("--output", default="-", help="file to write (default: stdout)")

    def handle(self, *args, since=None, until=None, format="csv", output="-", **options):
        try:
            start = parse_moment(since, end_of_day=False) if since else None
            end = parse_moment(until, end_of_day=True) if until else None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        render = as_csv if format == "csv" else as_json
        try:
            out = sys.stdout if output == "-" else open_private(output)
        except OSError as exc:
            raise CommandError(f"{output}: {exc.strerror}") from None
        try:
            for chunk in render(report_rows(start, end)):
                out.write(chunk)
        finally:
            if out is not sys.stdout:
                out.close()
