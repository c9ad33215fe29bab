"""What the sandbox PostgreSQL behind `make run` holds: a `payments` database with
a `payments` table, the example catalog's granted roles, and an admin role for
Airlock made with exactly the README's statements (not a superuser)."""

import secrets
import time

import psycopg
from psycopg import sql

from integrations.postgres.provider import scram_sha256_verifier

ADMIN = "airlock"
GRANTED_ROLES = {"payments_readonly": "SELECT", "payments_readwrite": "SELECT, INSERT, UPDATE"}
# The statements README.md ("Provider `postgres.role`") gives to create the least-privileged
# admin role, by server version: `{admin}` is its name, `{granted_role}` stands for each of
# the profiles' granted roles. The sandbox and the tests make their admin with exactly
# these, and tests/test_postgres_revocation.py checks that the README shows them as written.
README_ADMIN_STATEMENTS = {
    "PostgreSQL 15": ["CREATE ROLE {admin} LOGIN CREATEROLE;"],
    "PostgreSQL 16 and later": [
        "CREATE ROLE {admin} LOGIN CREATEROLE;",
        "GRANT {granted_role} TO {admin} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE;",
    ],
}


def readme_admin_statements(server_version: int) -> list[str]:
    """The README's statements for a server of this version (`server_version_num`)."""
    key = "PostgreSQL 16 and later" if server_version >= 160000 else "PostgreSQL 15"
    return README_ADMIN_STATEMENTS[key]


def admin_statements(server_version: int, admin: str, granted_roles: list[str]) -> list[str]:
    """The README's statements written out: a `{granted_role}` one once per granted role."""
    statements = []
    for statement in readme_admin_statements(server_version):
        roles = granted_roles if "{granted_role}" in statement else granted_roles[:1]
        statements += list(
            dict.fromkeys(statement.format(admin=admin, granted_role=role) for role in roles)
        )
    return statements


def configure_sandbox(port: int, superuser_password: str) -> str:
    """Set up a fresh cluster on 127.0.0.1:`port`; the DSN Airlock manages it with."""
    superuser = f"postgresql://postgres:{superuser_password}@127.0.0.1:{port}"
    wait_for_postgres(f"{superuser}/postgres")
    with psycopg.connect(f"{superuser}/postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE payments")
        for role in GRANTED_ROLES:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        for statement in admin_statements(conn.info.server_version, ADMIN, list(GRANTED_ROLES)):
            conn.execute(statement)
        password = secrets.token_urlsafe(24)
        # A verifier, as psql's \password sends: the password never reaches the server log.
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(ADMIN), sql.Literal(scram_sha256_verifier(password))
            )
        )
    with psycopg.connect(f"{superuser}/payments", autocommit=True) as conn:
        conn.execute("CREATE TABLE payments (id int PRIMARY KEY, amount_cents int NOT NULL)")
        conn.execute("INSERT INTO payments VALUES (1, 1250), (2, 990)")
        for role, privileges in GRANTED_ROLES.items():
            conn.execute(
                sql.SQL("GRANT {} ON payments TO {}").format(
                    sql.SQL(privileges), sql.Identifier(role)
                )
            )
    return f"postgresql://{ADMIN}:{password}@127.0.0.1:{port}/payments"


def wait_for_postgres(dsn: str, timeout: float = 30) -> None:
    """Wait until a freshly started server lets `dsn` in."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not answer within {timeout:.0f} s") from None
        time.sleep(0.2)
