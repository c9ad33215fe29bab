import sys

from django.core.management.base import BaseCommand, CommandError

from audit.export import open_private
from audit.management.time_range import add_time_range_arguments, time_range
from broker.access_report import as_csv, as_json, report_rows


class Command(BaseCommand):
    help = (
        "Every grant that gave access in a time range, with requester, profile, approvers "
        "and their MFA, reason, ticket, start, end and how it ended: for access reviews."
    )

    def add_arguments(self, parser):
        add_time_range_arguments(parser)
        parser.add_argument("--format", choices=["csv", "json"], default="csv")
        parser.add_argument("--output", default="-", help="file to write (default: stdout)")

    def handle(self, *args, since=None, until=None, format="csv", output="-", **options):
        start, end = time_range(since, until)
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
