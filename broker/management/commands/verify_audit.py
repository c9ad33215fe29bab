from django.core.management.base import BaseCommand, CommandError

from broker.audit import verify_chain


class Command(BaseCommand):
    help = "Walk the audit hash chain; exit non-zero at the first broken link."

    def handle(self, *args, **options):
        report = verify_chain()
        if not report.intact:
            raise CommandError(
                f"audit chain BROKEN: {report.error} ({report.count} event(s) verified before it)"
            )
        self.stdout.write(f"audit chain intact: {report.count} event(s), head {report.head_hash}")
