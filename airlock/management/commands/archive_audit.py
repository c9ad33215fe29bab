from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError
from django.utils import timezone

from airlock.database_roles import connected_as_owner
from audit import trail
from audit.archive import archive_before
from audit.export import parse_moment
from audit.models import Source
from audit.witness import WitnessError, configured_witness
from lib.secrets import MissingSecret


class Command(BaseCommand):
    help = (
        "Move audit events older than the retention period to the witness bucket as "
        "signed segments, then remove them from the database, as the tables' owner "
        "(DATABASE_MIGRATE_URL). verify_audit then checks archive and database as one chain."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--before", help="archive events created before this date or date-time (UTC)"
        )

    def handle(self, *args, before=None, **options):
        cutoff = self._cutoff(before)
        witness = configured_witness()
        if witness is None:
            raise CommandError("archiving needs a witness: set AIRLOCK_WITNESS_BUCKET")
        info = trail.RequestInfo(source=Source.CLI)
        try:
            if settings.AIRLOCK_DATABASE_OWNER is None:
                archived = archive_before(cutoff, witness, info)
            else:
                with connected_as_owner(DEFAULT_DB_ALIAS):
                    archived = archive_before(cutoff, witness, info)
        except (WitnessError, MissingSecret) as exc:
            raise CommandError(str(exc)) from None
        except DatabaseError as exc:
            raise CommandError(
                f"the database refused: {exc}".strip()
                + " (only the tables' owner may archive: set DATABASE_MIGRATE_URL)"
            ) from None
        for event in archived:
            data = event.data
            self.stdout.write(
                f"archived events #{data['first_seq']} to #{data['last_seq']} "
                f"({data['count']}) to {data['location']}"
            )
        if not archived:
            self.stdout.write(f"nothing to archive: no event was created before {cutoff}")

    def _cutoff(self, before):
        if before:
            try:
                return parse_moment(before, end_of_day=False)
            except ValueError as exc:
                raise CommandError(f"--before: {exc}") from None
        days = settings.AIRLOCK_AUDIT_RETENTION_DAYS
        if not days:
            raise CommandError(
                "no retention period: set AIRLOCK_AUDIT_RETENTION_DAYS or give --before"
            )
        return timezone.now() - timedelta(days=days)
