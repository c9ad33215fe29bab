"""Checks of the settings for a deployment, run by `manage.py check --deploy`."""

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core import checks
from django.db import DatabaseError, connection

from airlock.database_roles import takeover_powers
from audit import signing
from audit.models import AuditEvent
from lib.secrets import MissingSecret

CHART_LIBRARY = "vendor/chart.umd.min.js"
PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@checks.register(checks.Tags.security, deploy=True)
def shared_cache(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Slack's replay guard and the sign-in and API throttles keep their counters
    in the cache: one per process would let a replay or a guess through another
    web process."""
    if settings.CACHES["default"]["BACKEND"] not in PER_PROCESS_CACHES:
        return []
    return [
        checks.Warning(
            "the cache is per process: with more than one web process, a replayed Slack "
            "request or a throttled sign-in can get through another one",
            hint="set CACHE_URL=redis://... (shared by every web process)",
            id="airlock.W001",
        )
    ]


@checks.register(checks.Tags.security, deploy=True)
def separate_database_roles(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A role that owns the audit tables (or a superuser) could switch off their
    guards and rewrite the end of the trail; one that may create schemas, objects
    in the tables' schema or roles could still take it over (README, "Two database
    roles"). Asks the database; says nothing when it cannot be reached."""
    if connection.vendor != "postgresql":
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT r.rolsuper OR coalesce(t.tableowner = current_user, false), current_user"
                " FROM pg_roles r LEFT JOIN pg_tables t ON t.tablename = %s"
                " WHERE r.rolname = current_user",
                [AuditEvent._meta.db_table],
            )
            acts_as_owner, role = cursor.fetchone()
            powers = takeover_powers(cursor, role)
    except DatabaseError:
        return []
    if acts_as_owner:
        return [
            checks.Warning(
                "Airlock connects as a superuser or as the owner of its tables: a compromised "
                "process could switch off the audit trail's guards and rewrite its end",
                hint="run Airlock as a runtime role (DATABASE_URL) and migrate as the owner "
                "(DATABASE_MIGRATE_URL); README, Two database roles",
                id="airlock.W002",
            )
        ]
    if powers:
        return [
            checks.Warning(
                "Airlock's database role owns no table but could still take the audit trail "
                f"over: it has {'; '.join(powers)}",
                hint="take that away as a superuser; README, Two database roles",
                id="airlock.W003",
            )
        ]
    return []


@checks.register(checks.Tags.security, deploy=True)
def independent_evidence(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Without a signing key an export proves nothing to someone who does not hold
    the HMAC key; without a witness, the tables' owner can rewrite the whole chain
    and it still links (README, "Anchors")."""
    warnings = []
    try:
        signer = signing.configured_signer()
    except MissingSecret as exc:
        return [checks.Error(str(exc), id="airlock.E004")]
    if signer is None:
        warnings.append(
            checks.Warning(
                "audit exports are not signed: only holders of the HMAC key can check them, "
                "and any of them could forge one",
                hint=f"set {signing.SIGNING_KEY}_FILE to an Ed25519 private key "
                "(openssl genpkey -algorithm ed25519)",
                id="airlock.W004",
            )
        )
    if not settings.AIRLOCK_WITNESS_BUCKET:
        warnings.append(
            checks.Warning(
                "the audit chain is not anchored outside the database: its owner could "
                "rewrite it and verify_audit would still say intact",
                hint="set AIRLOCK_WITNESS_BUCKET to an S3 bucket with Object Lock "
                "(README, Anchors)",
                id="airlock.W005",
            )
        )
    return warnings


@checks.register(deploy=True)
def chart_library(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """/insights/ draws its charts with the Chart.js that `make` copies into static/."""
    if finders.find(CHART_LIBRARY):
        return []
    return [
        checks.Warning(
            f"{CHART_LIBRARY} is missing: /insights/ shows its tables but draws no chart",
            hint="make static/vendor/chart.umd.min.js (npm ci, then a copy)",
            id="airlock.W004",
        )
    ]
