from django.conf import settings
from django.core.management.base import BaseCommand

from audit.models import Source
from audit.trail import RequestInfo
from broker.lifecycle import catalog_sync
from broker.management.catalog_files import load_or_fail


class Command(BaseCommand):
    help = "Validate an access catalog and apply it; prints what changed."

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="catalog file (default: AIRLOCK_CATALOG)")

    def handle(self, *args, path=None, **options):
        catalog = load_or_fail(self, path, refused="refused, nothing changed: ")
        path = path or settings.AIRLOCK_CATALOG
        diff = catalog_sync(catalog=catalog, info=RequestInfo(source=Source.CLI))
        for label, slugs in (
            ("added", diff.added),
            ("changed", diff.changed),
            ("removed (disabled)", diff.removed),
        ):
            for slug in slugs:
                self.stdout.write(f"{label}: {slug}")
        for change in diff.standing:
            label = "still open" if change.action == "kept" else change.action
            self.stdout.write(f"{label}: {change.line}")
        for warning in diff.warnings:
            self.stderr.write(f"warning: {warning}")
        summary = (
            "no profile changes"
            if diff.empty
            else (
                f"{len(diff.added)} added, {len(diff.changed)} changed, {len(diff.removed)} removed"
            )
        )
        self.stdout.write(f"{path}: applied ({summary}), sha256 {catalog.sha256}")
