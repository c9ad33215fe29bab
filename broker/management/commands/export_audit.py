from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from broker import audit
from broker.audit_export import FORMATS, open_private
from broker.audit_manifest import Manifest, Sealer, write_manifest
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
            sealer = Sealer()
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
        seen = {"count": 0, "first": None, "last": None}

        def tracked(items):
            for event in items:
                seen["count"] += 1
                seen["first"] = seen["first"] or event
                seen["last"] = event
                yield event

        rows, _, _ = FORMATS[format]
        with out:
            for line in rows(tracked(events.iterator(chunk_size=5000))):
                chunk = line.encode()
                sealer.update(chunk)
                out.write(chunk)
        first, last = seen["first"], seen["last"]
        manifest = write_manifest(
            output,
            Manifest(
                format=format,
                since=since or "",
                until=until or "",
                count=seen["count"],
                first_seq=first.seq if first else None,
                last_seq=last.seq if last else None,
                first_prev_hash=first.prev_hash if first else None,
                last_hash=last.hash if last else None,
                file_sha256=sealer.sha256.hexdigest(),
                hmac_sha256=sealer.hmac.hexdigest(),
            ),
        )
        self.stderr.write(f"exported {seen['count']} event(s) as {format}; manifest {manifest}")
