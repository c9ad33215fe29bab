from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from broker.catalog.load import Catalog, CatalogError, load_catalog


def load_or_fail(command: BaseCommand, path: str | None, *, refused: str = "") -> Catalog:
    """Load the catalog at `path` (default AIRLOCK_CATALOG), printing every error."""
    path = path or settings.AIRLOCK_CATALOG
    try:
        return load_catalog(path)
    except CatalogError as exc:
        for error in exc.errors:
            command.stderr.write(f"error: {error}")
        raise CommandError(f"{path}: {refused}{len(exc.errors)} error(s)") from None
