"""What `make run` sets up on a MariaDB or MySQL that answers locally as root
without a password (the development machine's): a `core` database with a
`payments` table, the `core_reader` role, the schema for expiry events, and an
admin for Airlock made with exactly the README's statements (not root).
Development only; the tests set up the same with other names."""

import secrets

import pymysql

ADMIN = "airlock_admin"
CORE, EVENTS, ROLE = "core", "airlock_events", "core_reader"
# The statements README.md ("Provider `mysql.user`") gives for the least-privileged
# admin: `{admin}` its account, `{role}` each granted role, `{database}` each database
# a profile's privileges name, `{events}` the event schema.
README_ADMIN_STATEMENTS = [
    "CREATE USER '{admin}'@'%' IDENTIFIED BY '...';",
    "GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO '{admin}'@'%';",
    "GRANT SELECT ON mysql.user TO '{admin}'@'%';",
    "GRANT EVENT ON {events}.* TO '{admin}'@'%';",
    "GRANT {role} TO '{admin}'@'%' WITH ADMIN OPTION;",
    "GRANT SELECT ON {database}.* TO '{admin}'@'%' WITH GRANT OPTION;",
]


def admin_statements(
    admin: str, password: str, *, role: str, database: str, events: str
) -> list[str]:
    """The README's statements written out (the password as given, not '...')."""
    written = [
        statement.format(admin=admin, role=role, database=database, events=events)
        for statement in README_ADMIN_STATEMENTS
    ]
    written[0] = written[0].replace("'...'", f"'{password}'")
    return [statement.rstrip(";") for statement in written]


def sources(core: str, events: str, role: str) -> list[str]:
    """The database the profiles read, its role, and the schema for expiry events."""
    return [
        f"CREATE DATABASE IF NOT EXISTS {core}",
        f"CREATE TABLE IF NOT EXISTS {core}.payments (id INT PRIMARY KEY, amount INT)",
        f"INSERT IGNORE INTO {core}.payments VALUES (1, 100)",  # noqa: S608  # our own names
        f"CREATE DATABASE IF NOT EXISTS {events}",
        f"CREATE ROLE IF NOT EXISTS {role}",
        f"GRANT SELECT ON {core}.* TO {role}",
        "SET GLOBAL event_scheduler = ON",
    ]


# The local server's root, without a password (a development machine's, as in CI).
def root_answers(host: str = "127.0.0.1", port: int = 3306) -> bool:
    try:
        pymysql.connect(host=host, port=port, user="root", connect_timeout=2).close()
    except pymysql.err.MySQLError:
        return False
    return True


def configure_sandbox(host: str = "127.0.0.1", port: int = 3306) -> str:
    """Set the local server up as root; the DSN Airlock manages it with."""
    password = secrets.token_urlsafe(24)
    root = pymysql.connect(host=host, port=port, user="root", autocommit=True)
    statements = sources(CORE, EVENTS, ROLE) + admin_statements(
        ADMIN, password, role=ROLE, database=CORE, events=EVENTS
    )
    with root, root.cursor() as cursor:
        cursor.execute("DROP USER IF EXISTS %s@'%%'", [ADMIN])
        for statement in statements:
            cursor.execute(statement)
    return f"mysql://{ADMIN}:{password}@{host}:{port}/"
