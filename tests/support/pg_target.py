"""A throwaway PostgreSQL cluster with password (SCRAM) authentication.

The machine's own PostgreSQL trusts every local connection, so a password
could never be proven wrong there. The `postgres.role` provider is tested
against this cluster instead, where a login needs the right password and
PostgreSQL enforces `VALID UNTIL` itself.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from glob import glob
from pathlib import Path

import psycopg
from psycopg import sql

from integrations.postgres.provider import scram_sha256_verifier
from integrations.postgres.sandbox import readme_admin_statements

ADMIN_PASSWORD = "target-admin-password"  # a throwaway cluster that lives for one test run
# Log every statement, so a test can prove no password ever reaches the server log.
SERVER_OPTIONS = "-c listen_addresses=127.0.0.1 -c fsync=off -c log_statement=all"


def _pg_bin(name: str) -> str:
    found = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found: install PostgreSQL server binaries")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(args: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class TargetCluster:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="airlock-pg-target-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres:{ADMIN_PASSWORD}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        pwfile = self.dir / "pw"
        pwfile.write_text(ADMIN_PASSWORD)
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run(
            _as_postgres([
                _pg_bin("initdb"), "-D", str(self.data), "-U", "postgres",
                f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
            ]),
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            _as_postgres([
                _pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-w",
                "-o", f"-p {self.port} -k {self.dir} {SERVER_OPTIONS}",
                "start",
            ]),
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE payments (id int PRIMARY KEY, amount_cents int)")
            conn.execute("INSERT INTO payments VALUES (1, 1250), (2, 990)")
            conn.execute("CREATE ROLE app_reader NOLOGIN")
            conn.execute("GRANT SELECT ON payments TO app_reader")

    def create_admin(self, name: str, statements: list[str] | None = None) -> str:
        """Make a role for Airlock to manage this cluster as, and return its DSN: by
        default the README's least-privileged admin for this server's version, for
        the granted role `app_reader`. Its password is set the way psql's
        `\\password` sets one: as a SCRAM verifier."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            if statements is None:
                statements = readme_admin_statements(conn.info.server_version)
            # An earlier one's sessions first: a dropped role's session goes on unnamed.
            conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = %s",
                [name],
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            for statement in statements:
                conn.execute(statement.format(admin=name, granted_role="app_reader"))
            verifier = scram_sha256_verifier(ADMIN_PASSWORD)
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(verifier)
                )
            )
        return f"postgresql://{name}:{ADMIN_PASSWORD}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
            capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(self.dir, ignore_errors=True)


def can_login(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def wait_until(condition, timeout: float = 20.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
