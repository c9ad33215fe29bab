"""On PostgreSQL, the audit trail's guards that hold whoever is connected:

- TRUNCATE is refused on the events and on the chain head (it skips 0002's
  row trigger);
- the head is never deleted, and moves only forward: one link at a time, onto
  the stored event that follows it. So it cannot be moved back to hide events
  deleted from the end, nor onto an event that is not in the chain.

Even the tables' owner meets these triggers; only it (or a superuser) could drop
them, and Airlock does not run as the owner (broker/database_roles.py).

SQLite (`make run`) has no roles: whoever can write the file can drop any
trigger, so there is nothing to guard there and this migration does nothing.
"""

from django.db import migrations

# Names resolve in the tables' schema only, with pg_temp last: by default a
# session's temporary tables are searched first, and the runtime role may
# create one called broker_auditevent holding the event it would like to see.
HEAD_FORWARD_ONLY = """
CREATE FUNCTION airlock_audit_head_forward_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, {schema}, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the audit chain head cannot be deleted'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.id = OLD.id AND NEW.seq = OLD.seq + 1 AND EXISTS (
        SELECT 1 FROM broker_auditevent
        WHERE seq = NEW.seq AND hash = NEW.hash AND prev_hash = OLD.hash
    ) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION
        'the audit chain head only moves forward, onto the event that follows it '
        '(#% to #% refused)', OLD.seq, NEW.seq
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_head_forward_only
    BEFORE UPDATE OR DELETE ON broker_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION airlock_audit_head_forward_only();

CREATE TRIGGER audit_no_truncate
    BEFORE TRUNCATE ON broker_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION airlock_audit_append_only();

CREATE TRIGGER audit_head_no_truncate
    BEFORE TRUNCATE ON broker_auditchainhead
    FOR EACH STATEMENT EXECUTE FUNCTION airlock_audit_append_only();
"""

DROP_GUARDS = """
DROP TRIGGER IF EXISTS audit_head_no_truncate ON broker_auditchainhead;
DROP TRIGGER IF EXISTS audit_no_truncate ON broker_auditevent;
DROP TRIGGER IF EXISTS audit_head_forward_only ON broker_auditchainhead;
DROP FUNCTION IF EXISTS airlock_audit_head_forward_only();
"""


def add_guards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = cursor.fetchone()[0]
    schema_editor.execute(
        HEAD_FORWARD_ONLY.format(schema=schema_editor.quote_name(schema)), params=None
    )


def remove_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_GUARDS, params=None)


class Migration(migrations.Migration):
    dependencies = [("broker", "0007_orphan_sightings")]

    operations = [
        migrations.RunPython(add_guards, remove_guards),
    ]
