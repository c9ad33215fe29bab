from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from broker.catalog import CatalogError, load_catalog


class Command(BaseCommand):
    help = "Validate an access catalog without touching the database."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="catalog file (default: AIRLOCK_CATALOG)")

    def handle(self, *args, path=None, **options):
        path = path or settings.AIRLOCK_CATALOG
        try:
            catalog = load_catalog(path)
        except CatalogError as exc:
            for error in exc.errors:
                self.stderr.write(f"error: {error}")
            raise CommandError(f"{path}: {len(exc.errors)} error(s)") from None
        for warning in catalog.warnings:
            self.stderr.write(f"warning: {warning}")
        count = len(catalog.spec.profiles)
        self.stdout.write(f"{path}: OK, {count} profile(s), sha256 {catalog.sha256}")
