"""On PostgreSQL, a trigger that refuses UPDATE and DELETE on audit events:
the trail is append-only for everyone, including a compromised application."""

from django.db import migrations

CREATE_TRIGGER = """
CREATE OR REPLACE FUNCTION airlock_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_append_only
    BEFORE UPDATE OR DELETE ON broker_auditevent
    FOR EACH ROW EXECUTE FUNCTION airlock_audit_append_only();
"""

DROP_TRIGGER = """
DROP TRIGGER IF EXISTS audit_append_only ON broker_auditevent;
DROP FUNCTION IF EXISTS airlock_audit_append_only();
"""


def add_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_TRIGGER, params=None)


def remove_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGER, params=None)


class Migration(migrations.Migration):
    dependencies = [("broker", "0001_initial")]

    operations = [
        migrations.RunPython(add_trigger, remove_trigger),
    ]
