"""Airlock's two database roles on PostgreSQL.

The owner (DATABASE_MIGRATE_URL) owns the tables and runs the migrations.
Airlock runs as the runtime role (the user of DATABASE_URL), which `migrate`
grants what the application needs: reading and writing its ordinary tables,
but on the audit trail only reading, appending events and moving the head,
which its trigger lets move only forward (broker/migrations/0008_audit_guards.py).
Owning nothing, the runtime role cannot truncate the trail, switch its triggers
off, drop or replace them.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.recorder import MigrationRecorder
from django.db.utils import load_backend
from psycopg import sql

from audit.models import AuditChainHead, AuditEvent, ChainAnchor, SigningKey

ORDINARY_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
# What the runtime role may do to the tables that are not ordinary. The head's
# INSERT is for the very first event, which creates it. Reading the migration
# history lets runserver and `migrate --check` say what is missing.
SPECIAL_PRIVILEGES = {
    AuditEvent._meta.db_table: "SELECT, INSERT",
    AuditChainHead._meta.db_table: "SELECT, INSERT, UPDATE",
    # Public keys are retired, never removed; anchors are notes of what the witness holds.
    SigningKey._meta.db_table: "SELECT, INSERT, UPDATE",
    ChainAnchor._meta.db_table: "SELECT, INSERT",
    MigrationRecorder.Migration._meta.db_table: "SELECT",
}
SEQUENCE_PRIVILEGES = "USAGE, SELECT"


@contextmanager
def connected_as_owner(alias: str) -> Iterator[BaseDatabaseWrapper]:
    """Within the block, connection `alias` is the owner's (AIRLOCK_DATABASE_OWNER):
    the same database (also the test database, whose name differs from the URL's),
    reached with the owner's user, password, address and options."""
    runtime = connections[alias]
    owner_url = settings.AIRLOCK_DATABASE_OWNER
    owner_settings = {
        **runtime.settings_dict,
        **{key: owner_url[key] for key in ("USER", "PASSWORD", "HOST", "PORT")},
        "OPTIONS": {**runtime.settings_dict["OPTIONS"], **owner_url.get("OPTIONS", {})},
    }
    owner = load_backend(owner_settings["ENGINE"]).DatabaseWrapper(owner_settings, alias)
    connections[alias] = owner
    try:
        yield owner
    finally:
        owner.close()
        connections[alias] = runtime


def grant_runtime_role(connection: BaseDatabaseWrapper, role: str) -> None:
    """As the owner, grant `role` exactly what Airlock needs on every table its
    models define (so a table a later migration adds is covered by that migrate),
    and take back anything more. Refuses a role that could act as the owner."""
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    privileges = {table: ORDINARY_PRIVILEGES for table in tables} | SPECIAL_PRIVILEGES
    grantee = sql.Identifier(role)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        _refuse_an_owner(cursor, role, sorted(privileges))
        powers = takeover_powers(cursor, role)
        if powers:
            raise ImproperlyConfigured(
                f"{role}, the role Airlock runs as, owns nothing but could still take the "
                f"audit trail over: it has {'; '.join(powers)}. As a superuser, take that "
                "away (README, 'Two database roles')."
            )
        cursor.execute("SELECT current_schema()")
        schema = sql.Identifier(cursor.fetchone()[0])
        statements = [sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, grantee)]
        for table, granted in sorted(privileges.items()):
            statements += _exactly(granted, sql.SQL("TABLE {}").format(sql.Identifier(table)), role)
            for sequence in connection.introspection.get_sequences(cursor, table):
                target = sql.SQL("SEQUENCE {}").format(sql.Identifier(sequence["name"]))
                statements += _exactly(SEQUENCE_PRIVILEGES, target, role)
        for statement in statements:
            cursor.execute(statement.as_string(cursor.connection))


def _exactly(privileges: str, target: sql.Composable, role: str) -> list[sql.Composable]:
    """Revoke all, then grant `privileges`: exact, whatever was granted before."""
    grantee = sql.Identifier(role)
    return [
        sql.SQL("REVOKE ALL ON {} FROM {}").format(target, grantee),
        sql.SQL("GRANT {} ON {} TO {}").format(sql.SQL(privileges), target, grantee),
    ]


def takeover_powers(cursor, role: str) -> list[str]:
    """What lets `role`, owning no table, still rewrite the audit trail as Airlock
    sees it: CREATE on the database makes a schema named after it, which the
    default search_path ("$user", public) searches first, so tables of its own
    there stand in for the trail in every session of Airlock (verify_audit
    included) while the real one stops; CREATE on the tables' schema makes
    objects of its own beside them; a schema of that name it may create in (made by
    someone else) is the same as the first; CREATEROLE on PostgreSQL 15 may grant
    it the owner's role. Each in words, to name in an error."""
    cursor.execute(
        "SELECT rolcreaterole, has_database_privilege(rolname, current_database(), 'CREATE'),"
        " has_schema_privilege(rolname, current_schema(), 'CREATE'),"
        " EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = rolname"
        " AND has_schema_privilege(rolname, n.oid, 'CREATE'))"
        " FROM pg_roles WHERE rolname = %s",
        [role],
    )
    row = cursor.fetchone()
    if row is None:
        return []
    creates_roles, creates_schemas, creates_objects, has_own_schema = row
    return [
        power
        for power, held in (
            ("CREATEROLE (ALTER ROLE ... NOCREATEROLE)", creates_roles),
            ("CREATE on the database (REVOKE CREATE ON DATABASE ...)", creates_schemas),
            ("CREATE on the tables' schema (REVOKE CREATE ON SCHEMA ...)", creates_objects),
            ("a schema named after it, searched first (DROP SCHEMA ...)", has_own_schema),
        )
        if held
    ]


def _refuse_an_owner(cursor, role: str, tables: list[str]) -> None:
    """A runtime role that owns a table, or may act as its owner (a superuser, a
    member of the owner's role, even without INHERIT: it may SET ROLE), could
    switch the audit trail's guards off."""
    cursor.execute(
        "SELECT c.relname FROM pg_class c "
        "WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(%s) "
        "AND pg_has_role(%s, c.relowner, 'MEMBER') ORDER BY c.relname",
        [tables, role],
    )
    owned = [row[0] for row in cursor.fetchall()]
    if owned:
        named = ", ".join(owned[:3]) + (f" and {len(owned) - 3} more" if len(owned) > 3 else "")
        raise ImproperlyConfigured(
            f"{role}, the role Airlock runs as, owns {named} or may act as their owner "
            "(a superuser, or a member of the owner's role), so it could switch the audit "
            f"trail's guards off. As a superuser, REASSIGN OWNED BY {role} TO the owner, or "
            "take away the membership or SUPERUSER (README, 'Two database roles')."
        )
