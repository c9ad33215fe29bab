from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from broker import audit
from broker.audit_export import FORMATS, open_private
from broker.audit_manifest import SealedExport, write_manifest
from broker.management.time_range import add_time_range_arguments, time_range
from broker.models import AuditEvent, Source
from broker.secrets import MissingSecret


class Command(BaseCommand):
    help = (
        "Export audit events as csv, jsonl or ocsf, streamed in constant memory, with a "
        "manifest (FILE.manifest.json) sealed by an HMAC for `verify_audit --export FILE`."
    )

    def add_arguments(self, parser):
        add_time_range_arguments(parser)
        parser.add_argument("--format", choices=sorted(FORMATS), default="csv")
        parser.add_argument("--output", required=True, help="the file to write")

    def handle(self, *args, since=None, until=None, format="csv", output="", **options):
        start, end = time_range(since, until)
        events = AuditEvent.objects.order_by("seq")
        if start:
            events = events.filter(created_at__gte=start)
        if end:
            events = events.filter(created_at__lte=end)
        try:
            export = SealedExport(
                audit.event_records(events), format, since=since or "", until=until or ""
            )
        except MissingSecret as exc:
            raise CommandError(f"exports are sealed with an HMAC: {exc}") from None
        with transaction.atomic():
            audit.record(
                action="audit.exported",
                info=audit.RequestInfo(source=Source.CLI),
                data={"format": format, "since": since or "", "until": until or ""},
            )
        try:
            out = open_private(output, "wb")
        except OSError as exc:
            raise CommandError(f"{output}: {exc.strerror}") from None
        with out:
            for chunk in export.chunks():
                out.write(chunk)
        manifest = write_manifest(output, export.manifest())
        self.stderr.write(f"exported {export.count} event(s) as {format}; manifest {manifest}")
