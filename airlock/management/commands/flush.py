from django.core.management.base import CommandError
from django.core.management.commands import flush
from django.db import DatabaseError, connections


class Command(flush.Command):
    """flush empties every table, the audit trail too, whose triggers refuse
    TRUNCATE (broker/migrations/0008_audit_guards.py). On PostgreSQL it switches
    triggers off for its session, which only a superuser may do: so only a
    superuser can flush (the test suite does, between tests)."""

    def handle(self, **options):
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            return super().handle(**options)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = replica")
        except DatabaseError:
            raise CommandError(
                "flush would empty the audit trail, which refuses TRUNCATE: "
                "only a PostgreSQL superuser can flush"
            ) from None
        try:
            return super().handle(**options)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET session_replication_role")
