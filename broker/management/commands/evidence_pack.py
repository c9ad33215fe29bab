from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit import anchors
from audit.export import open_private
from audit.management.time_range import add_time_range_arguments
from audit.models import Source
from audit.trail import RequestInfo
from broker.evidence import EvidenceError, evidence_pack_build, parse_period, range_period
from lib.secrets import MissingSecret


class Command(BaseCommand):
    help = (
        "Write an evidence pack for a period: the signed export of its audit events, "
        "the anchors covering it, the access report, break-glass reviews and a control "
        "map, indexed and signed; `verify_audit --pack FILE --public-key KEY` checks it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--period", help="YYYY-QN, YYYY-MM or YYYY (UTC)")
        add_time_range_arguments(parser)
        parser.add_argument("--output", required=True, help="the zip to write")

    def handle(self, *args, period=None, since=None, until=None, output="", **options):
        try:
            if period and (since or until):
                raise EvidenceError("give --period or --since/--until, not both")
            if not period and not (since or until):
                raise EvidenceError("give --period (e.g. 2026-Q4) or --since/--until")
            chosen = parse_period(period) if period else range_period(since, until)
        except EvidenceError as exc:
            raise CommandError(str(exc)) from None
        try:
            out = open_private(output, "wb")
        except OSError as exc:
            raise CommandError(f"{output}: {exc.strerror}") from None
        try:
            with out:
                built = evidence_pack_build(
                    out, period=chosen, actor=None, info=RequestInfo(source=Source.CLI)
                )
        except (EvidenceError, MissingSecret) as exc:
            Path(output).unlink(missing_ok=True)  # no half-written pack left behind
            raise CommandError(f"no evidence pack: {exc}") from None
        self.stderr.write(
            f"evidence pack {output}: {chosen.name}, {built.events} event(s), "
            f"{built.anchors} anchor(s), {built.files} file(s) (audit event #{built.seq})"
        )
        anchors.anchor_now(self.stderr.write)
