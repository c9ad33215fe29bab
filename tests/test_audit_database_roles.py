"""The audit trail against Airlock's own database role.

Airlock runs as a role that may append to the audit trail and move its head
forward, and nothing more; the tables belong to the owner `migrate` connects as
(DATABASE_MIGRATE_URL). Each attack below runs as that runtime role, as a
compromised web or worker process would, and is refused; then Airlock runs a
whole request cycle as the same role.
"""

import os
import secrets
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.utils import DatabaseError
from psycopg import sql

from airlock.database_roles import grant_runtime_role
from audit import trail
from audit.models import AuditChainHead, AuditEvent
from tests.support.catalogs import TEST_CATALOG
from tests.support.chaos import airlock_database_url
from tests.support.trail import write_events

EVENTS, HEAD = AuditEvent._meta.db_table, AuditChainHead._meta.db_table


def manage(*args: str, database_url: str, migrate_url: str = "") -> subprocess.CompletedProcess:
    """manage.py in a process of its own on `database_url`; a migrate job also has
    the owner's `migrate_url`. Tasks it queues go nowhere (an in-memory broker)."""
    env = {**os.environ, "DATABASE_URL": database_url, "CELERY_BROKER_URL": "memory://"}
    env.pop("DATABASE_MIGRATE_URL", None)
    if migrate_url:
        env["DATABASE_MIGRATE_URL"] = migrate_url
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def as_runtime(role: str, *args: str) -> subprocess.CompletedProcess:
    return manage(*args, database_url=airlock_database_url(user=role))


def connect_as(role: str = "") -> psycopg.Connection:
    return psycopg.connect(airlock_database_url(user=role), autocommit=True)


@pytest.fixture(scope="module")
def runtime_role(django_db_setup):
    """A LOGIN role of this run's own (roles are shared by the whole server),
    granted by `migrate` what Airlock's runtime role gets; dropped afterwards."""
    role = f"airlock_rt_test_{secrets.token_hex(4)}"
    with connect_as() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        migrated = manage(
            "migrate",
            "--noinput",
            database_url=airlock_database_url(user=role),
            migrate_url=airlock_database_url(),
        )
        assert migrated.returncode == 0, migrated.stderr
        yield role
    finally:
        with connect_as() as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                [role],
            )
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def assert_trail_untouched(count: int, head: AuditChainHead) -> None:
    report = trail.verify_chain()
    assert report.intact, report.error
    assert report.count == count
    assert AuditChainHead.objects.values_list("seq", "hash").get() == (head.seq, head.hash)


# Each attack on the trail of 5 events, and the refusal PostgreSQL answers with.
ATTACKS = {
    "truncate the events": ("TRUNCATE broker_auditevent", "permission denied"),
    "truncate the head": ("TRUNCATE broker_auditchainhead", "permission denied"),
    "disable the append-only trigger": (
        "ALTER TABLE broker_auditevent DISABLE TRIGGER audit_append_only",
        "must be owner",
    ),
    "disable the head's triggers": (
        "ALTER TABLE broker_auditchainhead DISABLE TRIGGER ALL",
        "must be owner",
    ),
    "drop the append-only trigger": (
        "DROP TRIGGER audit_append_only ON broker_auditevent",
        "must be owner",
    ),
    "drop the head's trigger": (
        "DROP TRIGGER audit_head_forward_only ON broker_auditchainhead",
        "must be owner",
    ),
    "replace the trigger function": (
        "CREATE OR REPLACE FUNCTION airlock_audit_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
        "permission denied for schema",
    ),
    "drop the head's trigger function": (
        "DROP FUNCTION airlock_audit_head_forward_only() CASCADE",
        "must be owner",
    ),
    "create a function of its own": (
        "CREATE FUNCTION airlock_let_through() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
        "permission denied for schema",
    ),
    "create a replacement table": (
        "CREATE TABLE broker_auditevent_new (LIKE broker_auditevent)",
        "permission denied for schema",
    ),
    "rename the table away": (
        "ALTER TABLE broker_auditevent RENAME TO broker_auditevent_old",
        "must be owner",
    ),
    "drop the table": ("DROP TABLE broker_auditevent CASCADE", "must be owner"),
    "delete the newest events": (
        "DELETE FROM broker_auditevent WHERE seq > 3",
        "permission denied",
    ),
    "change an event": (
        "UPDATE broker_auditevent SET reason = 'nothing to see' WHERE seq = 5",
        "permission denied",
    ),
    "move the head back": (
        "UPDATE broker_auditchainhead SET seq = 3, "
        "hash = (SELECT hash FROM broker_auditevent WHERE seq = 3)",
        "only moves forward",
    ),
    "delete the head": ("DELETE FROM broker_auditchainhead", "permission denied"),
    # The archive's door (audit/archive.py) is the owner's alone.
    "delete events through the archive's door": (
        "SELECT set_config('airlock.archived_through', '999', false); "
        "DELETE FROM broker_auditevent",
        "permission denied",
    ),
    # A temporary table is searched before the real one: the head's trigger must
    # not take an event that exists only in the attacker's session for the next link.
    "move the head onto an event in a shadow table": (
        "CREATE TEMP TABLE broker_auditevent AS SELECT * FROM public.broker_auditevent "
        "WHERE seq = 5; "
        "UPDATE broker_auditevent SET seq = 6, prev_hash = hash, hash = repeat('f', 64); "
        "UPDATE broker_auditchainhead SET seq = 6, hash = repeat('f', 64)",
        "only moves forward",
    ),
    "switch triggers off for the session": (
        "SET session_replication_role = replica",
        "permission denied",
    ),
    "become the tables' owner": (
        "DO $$ BEGIN EXECUTE format('SET ROLE %I', (SELECT tableowner FROM pg_tables "
        "WHERE tablename = 'broker_auditevent')); END $$",
        "permission denied",
    ),
}


@pytest.mark.parametrize(("attack", "refusal"), ATTACKS.values(), ids=ATTACKS.keys())
def test_the_runtime_role_cannot_rewrite_the_trail(runtime_role, transactional_db, attack, refusal):
    write_events(5)
    head = AuditChainHead.objects.get()
    with connect_as(runtime_role) as runtime, pytest.raises(psycopg.Error, match=refusal):
        runtime.execute(attack)
    assert_trail_untouched(5, head)


def test_flush_as_the_runtime_role_is_refused(runtime_role, transactional_db):
    write_events(3)
    head = AuditChainHead.objects.get()
    flushed = as_runtime(runtime_role, "flush", "--noinput")
    assert flushed.returncode != 0
    assert "only a PostgreSQL superuser can flush" in flushed.stderr
    assert_trail_untouched(3, head)


# What `migrate` grants the runtime role on the audit trail; every other table of
# Airlock's gets the ordinary four, and the migration history is read-only.
AUDIT_PRIVILEGES = {
    EVENTS: {"SELECT", "INSERT"},
    HEAD: {"SELECT", "INSERT", "UPDATE"},
    "audit_signingkey": {"SELECT", "INSERT", "UPDATE"},
    "audit_chainanchor": {"SELECT", "INSERT"},
}
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def test_migrate_grants_the_runtime_role_what_airlock_needs_and_no_more(runtime_role, db):
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    expected = {table: {"SELECT", "INSERT", "UPDATE", "DELETE"} for table in tables}
    expected |= AUDIT_PRIVILEGES | {"django_migrations": {"SELECT"}}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, array_agg(p.privilege), pg_get_userbyid(c.relowner) "
            "FROM pg_class c CROSS JOIN unnest(%s::text[]) AS p(privilege) "
            "WHERE c.relname = ANY(%s) AND c.relnamespace = current_schema()::regnamespace "
            "AND has_table_privilege(%s, c.oid, p.privilege) GROUP BY c.relname, c.relowner",
            [list(TABLE_PRIVILEGES), list(expected), runtime_role],
        )
        held = {table: (set(privileges), owner) for table, privileges, owner in cursor.fetchall()}
        sequences = [
            sequence["name"]
            for table in tables
            for sequence in connection.introspection.get_sequences(cursor, table)
        ]
        cursor.execute(
            "SELECT s FROM unnest(%s::text[]) AS s "
            "WHERE NOT has_sequence_privilege(%s, s, 'USAGE')",
            [sequences, runtime_role],
        )
        unusable_sequences = [row[0] for row in cursor.fetchall()]
    assert {table: privileges for table, (privileges, _) in held.items()} == expected
    assert all(owner != runtime_role for _, owner in held.values())
    assert sequences and not unusable_sequences


def test_migrate_refuses_a_runtime_role_that_can_act_as_the_owner(runtime_role, db):
    # The runtime role owning one table (left over from a single-role deployment)
    # could switch off whatever guards that table; the same holds for a superuser
    # or a member of the owner. Rolled back with the test.
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("ALTER TABLE broker_alert OWNER TO {}")
            .format(sql.Identifier(runtime_role))
            .as_string()
        )
    with pytest.raises(ImproperlyConfigured, match=f"{runtime_role}.*broker_alert.*REASSIGN"):
        grant_runtime_role(connection, runtime_role)


# Powers that let a role owning no table still take the trail over, and how a
# careless grant would hand each one out.
POWERS = {
    "create a schema searched first": "GRANT CREATE ON DATABASE {db} TO {role}",
    "create objects beside the tables": "GRANT CREATE ON SCHEMA public TO {role}",
    "a schema of its name": "CREATE SCHEMA {role} AUTHORIZATION {role}",
    "grant itself the owner's role (PostgreSQL 15)": "ALTER ROLE {role} CREATEROLE",
}


def give(role: str, power: str) -> sql.Composed:
    database = sql.Identifier(connection.settings_dict["NAME"])
    return sql.SQL(power).format(db=database, role=sql.Identifier(role))


@pytest.mark.parametrize("power", POWERS.values(), ids=POWERS.keys())
def test_migrate_refuses_a_runtime_role_that_could_take_the_trail_over(runtime_role, db, power):
    with connection.cursor() as cursor:  # rolled back with the test
        cursor.execute(give(runtime_role, power).as_string())
    with pytest.raises(ImproperlyConfigured, match=f"{runtime_role}.*could still take"):
        grant_runtime_role(connection, runtime_role)


@pytest.mark.django_db(transaction=True)
def test_a_schema_of_its_own_would_have_hidden_the_trail_from_verify_audit(runtime_role):
    """Why CREATE on the database is refused: a schema named after the runtime role
    comes first in its search_path, so its own copies of the two tables stand in for
    the trail in every Airlock process, verify_audit included, to be cut at will
    (and every later event would go there). `check --deploy` says so (W003)."""
    write_events(5)
    with connect_as() as admin:
        admin.execute(give(runtime_role, POWERS["create a schema searched first"]))
    schema = sql.Identifier(runtime_role)
    try:
        with connect_as(runtime_role) as runtime:
            runtime.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
            for table in map(sql.Identifier, (EVENTS, HEAD)):
                runtime.execute(
                    sql.SQL("CREATE TABLE {0}.{1} (LIKE public.{1} INCLUDING ALL); "
                            "INSERT INTO {0}.{1} SELECT * FROM public.{1}").format(schema, table)
                )  # fmt: skip
            runtime.execute(
                sql.SQL("DELETE FROM {0}.broker_auditevent WHERE seq > 3; "
                        "UPDATE {0}.broker_auditchainhead SET seq = 3, hash = "
                        "(SELECT hash FROM {0}.broker_auditevent WHERE seq = 3)").format(schema)
            )  # fmt: skip
        fooled = as_runtime(runtime_role, "verify_audit")
        assert "audit chain intact: 3 event(s)" in fooled.stdout  # the real trail holds 5
        checked = as_runtime(runtime_role, "check", "--deploy")
        assert "airlock.W003" in checked.stderr and "CREATE on the database" in checked.stderr
        migrated = manage(
            "migrate",
            "--noinput",
            database_url=airlock_database_url(user=runtime_role),
            migrate_url=airlock_database_url(),
        )
        assert migrated.returncode != 0 and "could still take" in migrated.stderr
    finally:
        with connect_as() as admin:
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))
            admin.execute(
                sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}").format(
                    sql.Identifier(connection.settings_dict["NAME"]), schema
                )
            )


@pytest.mark.django_db(transaction=True)
def test_the_runtime_role_writes_the_very_first_event(runtime_role, tmp_path):
    assert not AuditChainHead.objects.exists()
    catalog = tmp_path / "access.yaml"
    catalog.write_text(TEST_CATALOG)
    synced = as_runtime(runtime_role, "sync_catalog", str(catalog))
    assert synced.returncode == 0, synced.stderr
    assert AuditChainHead.objects.get().seq == AuditEvent.objects.count() > 0
    assert trail.verify_chain().intact


@pytest.mark.django_db(transaction=True)
def test_airlock_runs_a_whole_cycle_as_the_runtime_role(runtime_role, pg_target, people, tmp_path):
    catalog = tmp_path / "access.yaml"
    catalog.write_text(TEST_CATALOG)
    synced = as_runtime(runtime_role, "sync_catalog", str(catalog))
    assert synced.returncode == 0, synced.stderr
    cycled = as_runtime(runtime_role, "shell", "--no-imports", "-c", CYCLE)
    assert cycled.returncode == 0, cycled.stderr
    assert cycled.stdout.split() == [runtime_role, "revoked"]
    verified = as_runtime(runtime_role, "verify_audit")
    assert verified.returncode == 0, verified.stderr
    assert "audit chain intact:" in verified.stdout
    # The data.* events record the accounts, groups and MFA device being made.
    lifecycle_events = AuditEvent.objects.exclude(action__startswith="data.")
    actions = lifecycle_events.values_list("action", flat=True)
    assert list(actions) == [
        "catalog.synced",
        "request.submitted",
        "mfa.verified",
        "request.decision.approve",
        "request.approved",
        "grant.scheduled",
        "grant.activated",
        "grant.revoke_requested",
        "grant.revoked",
    ]


# alice asks, bob approves after MFA, the activation and the revocation run as a
# worker would run them; it prints who it ran as and how the grant ended.
CYCLE = """
from django.contrib.auth import get_user_model
from django.db import connection
from accounts.services import mfa_step_up
from broker import lifecycle
from lib.durations import parse_duration
from broker.models import AccessProfile, Grant
from tests.support.people import WEB, current_code, phone_of

alice, bob = (get_user_model().objects.get(username=name) for name in ("alice", "bob"))
request = lifecycle.access_request_submit(
    requester=alice, profile=AccessProfile.objects.get(slug="test-db"),
    duration=parse_duration("10m"), reason="investigating INC-1", info=WEB,
)
mfa_step_up(user=bob, code=current_code(phone_of(bob)), info=WEB)
lifecycle.access_request_approve(request_id=request.id, approver=bob, info=WEB)
grant = Grant.objects.get(request=request)
lifecycle.grant_activate(grant_id=grant.id)
lifecycle.grant_revoke(grant_id=grant.id, actor=alice, reason="done", info=WEB)
lifecycle.grant_revoke_execute(grant_id=grant.id)
with connection.cursor() as cursor:
    cursor.execute("SELECT current_user")
    print(cursor.fetchone()[0], Grant.objects.get(pk=grant.pk).status)
"""


@pytest.mark.parametrize(
    "attack",
    [
        "TRUNCATE broker_auditevent",
        "TRUNCATE broker_auditchainhead",
        "TRUNCATE broker_auditevent, broker_auditchainhead CASCADE",
    ],
)
def test_truncate_is_refused_even_for_the_owner(db, attack):
    write_events(3)
    head = AuditChainHead.objects.get()
    with (
        pytest.raises(DatabaseError, match=r"append-only \(TRUNCATE refused\)"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(attack)
    assert_trail_untouched(3, head)


@pytest.mark.parametrize(
    "move",
    [
        "SET seq = 3, hash = (SELECT hash FROM broker_auditevent WHERE seq = 3)",  # back
        "SET seq = 0, hash = repeat('0', 64)",  # back to the start
        "SET hash = hash",  # nowhere
        "SET seq = 6, hash = repeat('f', 64)",  # forward, onto no event
        "SET id = 2",  # away: a new head row could then start over
    ],
)
def test_the_head_only_moves_forward_even_for_the_owner(db, move):
    write_events(5)
    head = AuditChainHead.objects.get()
    with (
        pytest.raises(DatabaseError, match="only moves forward"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"UPDATE broker_auditchainhead {move}")
    assert_trail_untouched(5, head)


@pytest.mark.parametrize(
    ("seq", "follows_the_head"),
    [(6, False), (7, True)],
    ids=["an event that does not link to it", "an event two links ahead"],
)
def test_the_head_moves_only_onto_the_event_that_follows_it(db, seq, follows_the_head):
    write_events(5)
    head = AuditChainHead.objects.get()
    forged = AuditEvent.objects.get(seq=5)
    forged.pk, forged.seq = None, seq
    forged.prev_hash = head.hash if follows_the_head else "e" * 64
    forged.hash = trail.event_hash(forged)
    forged.save()
    with (
        pytest.raises(DatabaseError, match="only moves forward"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE broker_auditchainhead SET seq = %s, hash = %s", [seq, forged.hash])
    assert AuditChainHead.objects.values_list("seq", "hash").get() == (head.seq, head.hash)


def test_the_head_cannot_be_deleted_even_by_the_owner(db):
    write_events(2)
    head = AuditChainHead.objects.get()
    with (
        pytest.raises(DatabaseError, match="cannot be deleted"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM broker_auditchainhead")
    assert_trail_untouched(2, head)


def test_migrate_on_sqlite_needs_no_roles(tmp_path):
    """`make run`: one SQLite file, no roles; migrate and the trail work as before."""
    database_url = f"sqlite:///{tmp_path / 'airlock.sqlite3'}"
    for command, says in (
        (["migrate", "--noinput"], "Applying broker.0008_audit_guards... OK"),
        (["sync_catalog"], "applied"),
        (["verify_audit"], "audit chain intact: "),
    ):
        ran = manage(*command, database_url=database_url)
        assert ran.returncode == 0, ran.stderr
        assert says in ran.stdout


def test_check_deploy_does_not_flag_the_runtime_role(runtime_role):
    """`airlock.W002` is for a superuser or the tables' owner (tests/test_deploy_checks.py)."""
    result = as_runtime(runtime_role, "check", "--deploy")
    assert "airlock.W002" not in result.stderr, result.stderr
