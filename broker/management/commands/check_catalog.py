from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from broker.management.catalog_files import load_or_fail
from broker.policy.reviews import regranted_by_file
from lib.providers import ProviderError, get_provider


class Command(BaseCommand):
    help = (
        "Validate an access catalog without touching the database; with --online, "
        "also ask each provider's source whether it can serve each profile; with "
        "--reviews, warn where it grants again what an access review removed."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="catalog file (default: AIRLOCK_CATALOG)")
        parser.add_argument(
            "--reviews",
            action="store_true",
            help="also warn where the file grants again what an access review removed "
            "(reads the database)",
        )
        parser.add_argument(
            "--online",
            action="store_true",
            help=(
                "also check at the sources (reachable, roles exist, session limits; "
                "postgres.role: a revocation dry run with a probe role)"
            ),
        )

    def handle(self, *args, path=None, online=False, reviews=False, **options):
        catalog = load_or_fail(self, path)
        path = path or settings.AIRLOCK_CATALOG
        warnings = list(catalog.warnings)
        if reviews:
            try:
                warnings += regranted_by_file(catalog)
            except DatabaseError as exc:
                raise CommandError(f"--reviews reads the database, which failed: {exc}") from None
        for warning in warnings:
            self.stderr.write(f"warning: {warning}")
        if online:
            errors = []
            for profile in catalog.spec.profiles:
                provider = get_provider(profile.provider.kind)
                try:
                    provider.validate_at_source(profile.provider.config, profile.max_duration)
                except ProviderError as exc:
                    errors.append(f"profile {profile.id!r}: provider: {exc}")
            for error in errors:
                self.stderr.write(f"error: {error}")
            if errors:
                raise CommandError(f"{path}: {len(errors)} error(s) at the sources")
        count = len(catalog.spec.profiles)
        checked = " and at the sources" if online else ""
        self.stdout.write(f"{path}: OK{checked}, {count} profile(s), sha256 {catalog.sha256}")
