from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit import anchors, trail
from audit.actions import Action
from audit.export import FORMATS, open_private
from audit.management.time_range import add_time_range_arguments, time_range
from audit.manifest import ExportRange, SealedExport, sealing_keys, write_manifest
from audit.models import Source
from lib.secrets import MissingSecret


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
        with transaction.atomic():
            try:  # before the export's event: a key listed now precedes it in the chain
                keys = sealing_keys()
            except MissingSecret as exc:  # before committing: no export, no event
                raise CommandError(f"exports are sealed: {exc}") from None
            exported = trail.record(
                action=Action.AUDIT_EXPORTED,
                info=trail.RequestInfo(source=Source.CLI),
                data={"format": format, "since": since or "", "until": until or ""},
            )
            # Pinned to the chain as it is with this export's own event: the
            # manifest states exactly that, however many events follow meanwhile.
            export_range = ExportRange(start, end, through_seq=exported.seq)
            if problem := export_range.archived_problem():  # before committing: no event
                raise CommandError(problem)
            export = SealedExport(export_range, format, keys)
        try:
            out = open_private(output, "wb")
        except OSError as exc:
            raise CommandError(f"{output}: {exc.strerror}") from None
        with out:
            for chunk in export.chunks():
                out.write(chunk)
        manifest = write_manifest(output, export.manifest())
        self.stderr.write(f"exported {export.count} event(s) as {format}; manifest {manifest}")
        anchors.anchor_now(self.stderr.write)
