"""On PostgreSQL, the append-only trigger lets exactly one DELETE through: the
tables' owner removing events it has archived (audit/archive.py), up to the
sequence number it names for its own transaction. The runtime role holds no
DELETE privilege on the events at all, so it never reaches this trigger."""

from django.db import migrations

ARCHIVE_AWARE = """
CREATE OR REPLACE FUNCTION airlock_audit_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, {schema}, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW'
        AND OLD.seq <= coalesce(
            nullif(current_setting('airlock.archived_through', true), '')::bigint, 0)
        AND EXISTS (
            SELECT 1 FROM pg_class
            WHERE oid = TG_RELID AND pg_has_role(current_user, relowner, 'MEMBER'))
    THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION airlock_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def allow_archived_deletes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = cursor.fetchone()[0]
    schema_editor.execute(
        ARCHIVE_AWARE.format(schema=schema_editor.quote_name(schema)), params=None
    )


def append_only_again(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_signing_keys_and_anchors"), ("broker", "0008_audit_guards")]

    operations = [migrations.RunPython(allow_archived_deletes, append_only_again)]
