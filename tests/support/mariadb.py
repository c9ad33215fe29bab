"""The machine's MariaDB (127.0.0.1:3306, root without a password, as on the CI
machine) as the target of the `mysql.user` provider, with the least-privileged
admin integrations/mysql/provider.py documents, a database with a table the
grants read, and the schema that holds the expiry events. Names carry a
suffix, so that two suites do not share them."""

import os
import secrets

import pymysql

from integrations.mysql.sandbox import admin_statements, sources

ROOT = {"host": "127.0.0.1", "port": int(os.environ.get("AIRLOCK_TEST_MYSQL_PORT", "3306")),
        "user": "root", "password": ""}  # fmt: skip


def root_connection(**extra):
    return pymysql.connect(**ROOT, autocommit=True, **extra)


class MariaDbTarget:
    def __init__(self, suffix: str):
        self.core = f"airlock_core_{suffix}"
        self.events = f"airlock_events_{suffix}"
        self.admin = f"airlock_admin_{suffix}"
        self.role = f"core_reader_{suffix}"
        self.password = secrets.token_urlsafe(16)

    @property
    def admin_dsn(self) -> str:
        return f"mysql://{self.admin}:{self.password}@127.0.0.1:{ROOT['port']}/"

    def start(self) -> None:
        with root_connection() as conn, conn.cursor() as cursor:
            for statement in self._setup():
                cursor.execute(statement)

    def _setup(self) -> list[str]:
        return [
            f"DROP USER IF EXISTS '{self.admin}'@'%'",
            *sources(self.core, self.events, self.role),
            # What the README asks of the admin, no more.
            *admin_statements(self.admin, self.password, role=self.role, database=self.core,
                              events=self.events),
        ]  # fmt: skip

    def stop(self) -> None:
        with root_connection() as conn, conn.cursor() as cursor:
            # The accounts this run's grants left (a test that failed half-way).
            cursor.execute("SELECT User FROM mysql.user WHERE User LIKE %s",
                           [f"t{self.core[-4:]}\\_%"])  # fmt: skip
            for (user,) in cursor.fetchall():
                cursor.execute("DROP USER IF EXISTS %s@'%%'", [user])
            cursor.execute(f"DROP DATABASE IF EXISTS {self.events}")
            cursor.execute(f"DROP DATABASE IF EXISTS {self.core}")
            cursor.execute(f"DROP ROLE IF EXISTS {self.role}")
            cursor.execute(f"DROP USER IF EXISTS '{self.admin}'@'%'")


def can_log_in(credential: dict, database: str) -> bool:
    """Whether the credential logs in and reads the table, as the engineer would
    (with the SET ROLE the credential's instructions give, where it has a role)."""
    try:
        with session_of(credential) as conn, conn.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {database}.payments")
            return cursor.fetchone()[0] == 1
    except pymysql.err.MySQLError:
        return False


def session_of(credential: dict):
    role = credential.get("role")
    return pymysql.connect(
        host=credential["host"], port=credential["port"], user=credential["user"],
        password=credential["password"], autocommit=True, connect_timeout=5,
        init_command=f"SET ROLE {role}" if role else None,
    )  # fmt: skip


def answers(session) -> bool:
    try:
        with session.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except pymysql.err.MySQLError:
        return False


def account_exists(user: str) -> bool:
    with root_connection() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM mysql.user WHERE User = %s", [user])
        return cursor.fetchone() is not None


def core_profile(target: MariaDbTarget, slug: str, **config) -> str:
    """A catalog profile (to append under `profiles:`) granting accounts on `target`;
    by default SELECT on its core database."""
    settings = {
        "dsn_env": "AIRLOCK_MYSQL_DSN_TEST",
        "event_schema": target.events,
        "user_prefix": f"t{target.core[-4:]}_",
        **(config or {"privileges": [f"SELECT ON {target.core}.*"]}),
    }
    return f"""
  - id: {slug}
    title: The legacy core, read-only
    provider: {{kind: mysql.user, config: {settings!r}}}
    requesters: {{groups: [engineers]}}
    approvers: {{groups: [sre]}}
    max_duration: 2h
"""
