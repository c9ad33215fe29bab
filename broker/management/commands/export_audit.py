import os
import sys
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from broker import audit
from broker.audit_export import FORMATS, parse_moment
from broker.models import AuditEvent, Source


def moment(text: str, *, end_of_day: bool) -> datetime:
    try:
        return parse_moment(text, end_of_day=end_of_day)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


class Command(BaseCommand):
    help = "Export audit events as csv, jsonl or ocsf, streamed in constant memory."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="first day or moment (ISO 8601, UTC if no zone)")
        parser.add_argument("--until", help="last day or moment (inclusive)")
        parser.add_argument("--format", choices=sorted(FORMATS), default="csv")
        parser.add_argument("--output", default="-", help="file to write (default: stdout)")

    def handle(self, *args, since=None, until=None, format="csv", output="-", **options):
        events = AuditEvent.objects.order_by("seq")
        if since:
            events = events.filter(created_at__gte=moment(since, end_of_day=False))
        if until:
            events = events.filter(created_at__lte=moment(until, end_of_day=True))
        rows, _, _ = FORMATS[format]
        with transaction.atomic():
            audit.record(
                action="audit.exported",
                info=audit.RequestInfo(source=Source.CLI),
                data={"format": format, "since": since or "", "until": until or ""},
            )
        try:
            out = sys.stdout if output == "-" else _private_file(output)
        except OSError as exc:
            raise CommandError(f"{output}: {exc.strerror}") from None
        exported = 0

        def counted(items):
            nonlocal exported
            for item in items:
                exported += 1
                yield item

        try:
            for line in rows(counted(events.iterator(chunk_size=5000))):
                out.write(line)
        finally:
            if out is not sys.stdout:
                out.close()
        self.stderr.write(f"exported {exported} event(s) as {format}")


def _private_file(path: str):
    """Audit exports name people and addresses: readable by the owner only."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w")
