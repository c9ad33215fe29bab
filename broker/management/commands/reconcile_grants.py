from django.core.management.base import BaseCommand, CommandError

from audit.models import Source
from audit.trail import RequestInfo
from broker.reconcile import find_orphans, revoke_orphan
from lib.providers import ProviderError


class Command(BaseCommand):
    help = (
        "List credentials live at their source that no active grant explains; "
        "--fix revokes them. Exits non-zero while any remain."
    )

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="revoke the orphans found")

    def handle(self, *args, fix=False, **options):
        findings = find_orphans()
        for problem in findings.unreachable:
            self.stderr.write(f"could not check: {problem}")
        remaining = 0
        for orphan in findings.orphans:
            if not fix:
                self.stdout.write(f"orphan: {orphan}")
                remaining += 1
                continue
            try:
                revoke_orphan(orphan, info=RequestInfo(source=Source.CLI))
            except ProviderError as exc:
                self.stderr.write(f"could not revoke {orphan}: {exc}")
                remaining += 1
            else:
                self.stdout.write(f"revoked: {orphan}")
        if remaining or findings.unreachable:
            raise CommandError(
                f"{remaining} orphan(s) remain, {len(findings.unreachable)} source(s) unchecked"
            )
        self.stdout.write(f"no orphans ({len(findings.orphans)} revoked)")
