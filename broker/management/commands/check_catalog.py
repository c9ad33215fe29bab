from django.conf import settings
from django.core.management.base import BaseCommand

from broker.management.catalog_files import load_or_fail


class Command(BaseCommand):
    help = "Validate an access catalog without touching the database."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="catalog file (default: AIRLOCK_CATALOG)")

    def handle(self, *args, path=None, **options):
        catalog = load_or_fail(self, path)
        for warning in catalog.warnings:
            self.stderr.write(f"warning: {warning}")
        count = len(catalog.spec.profiles)
        self.stdout.write(
            f"{path or settings.AIRLOCK_CATALOG}: OK, {count} profile(s), sha256 {catalog.sha256}"
        )
