"""`postgres.role`: a short-lived PostgreSQL login role.

The role is created with `VALID UNTIL` the grant's expiry, so PostgreSQL
itself refuses password logins after that moment even if Airlock is down.
Revocation blocks new logins, ends the role's sessions and drops it.

The password goes to the server as a SCRAM-SHA-256 verifier computed here, so
the plaintext never appears in a statement that the server could log.
"""

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from broker.secrets import MissingSecret, read_secret
from integrations.providers import GrantContext, Issued, ProviderConfigError, ProviderError

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
ALLOWED_KEYS = {"dsn_env", "granted_roles", "role_prefix", "connection_limit", "host", "port"}
SCRAM_ITERATIONS = 4096


def scram_sha256_verifier(password: str) -> str:
    """The verifier PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802/7677)."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


class PostgresRoleProvider:
    kind = "postgres.role"
    needs_public_key = False
    min_duration = timedelta(seconds=1)

    def validate_config(self, config: dict[str, Any]) -> None:
        unknown = set(config) - ALLOWED_KEYS
        if unknown:
            raise ProviderConfigError(f"unknown keys: {', '.join(sorted(unknown))}")
        dsn_env = config.get("dsn_env")
        if not isinstance(dsn_env, str) or not ENV_NAME.match(dsn_env):
            raise ProviderConfigError(
                "dsn_env must name the environment variable that holds the admin DSN"
            )
        roles = config.get("granted_roles")
        if not isinstance(roles, list) or not roles:
            raise ProviderConfigError("granted_roles must be a non-empty list of role names")
        for role in roles:
            if not isinstance(role, str) or not IDENTIFIER.match(role):
                raise ProviderConfigError(f"granted_roles: {role!r} is not a plain role name")
        prefix = config.get("role_prefix", "airlock_")
        if not isinstance(prefix, str) or not IDENTIFIER.match(prefix):
            raise ProviderConfigError("role_prefix must be a lowercase identifier")
        limit = config.get("connection_limit", 5)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
            raise ProviderConfigError("connection_limit must be an integer from 1 to 100")

    def grant(self, context: GrantContext) -> Issued:
        config = context.config
        role = config.get("role_prefix", "airlock_") + context.grant_id.replace("-", "")[:20]
        if context.serial:
            role += f"x{context.serial}"  # an extension's new role beside the old one
        password = secrets.token_urlsafe(32)
        options = sql.SQL(
            "LOGIN INHERIT CONNECTION LIMIT {limit} VALID UNTIL {until} PASSWORD {verifier}"
        ).format(
            limit=sql.Literal(config.get("connection_limit", 5)),
            until=sql.Literal(context.expires_at.isoformat()),
            verifier=sql.Literal(scram_sha256_verifier(password)),
        )
        granted = sql.SQL(", ").join(sql.Identifier(name) for name in config["granted_roles"])
        with self._connection(config["dsn_env"]) as conn:
            with _errors_mapped():
                # The role name is derived from the grant id, so a retried
                # activation updates the role it created before instead of failing.
                exists = conn.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", [role]
                ).fetchone()
                with conn.transaction():
                    verb = "ALTER" if exists else "CREATE"
                    conn.execute(
                        sql.SQL(verb + " ROLE {} WITH {}").format(sql.Identifier(role), options)
                    )
                    conn.execute(sql.SQL("GRANT {} TO {}").format(granted, sql.Identifier(role)))
            server = conninfo_to_dict(read_secret(config["dsn_env"]))
        credential = {
            "kind": "postgres",
            "host": config.get("host") or server.get("host", "localhost"),
            "port": int(config.get("port") or server.get("port", 5432)),
            "dbname": server.get("dbname", "postgres"),
            "user": role,
            "password": password,
        }
        return Issued(
            credential=credential,
            handle={"role": role, "dsn_env": config["dsn_env"]},
            expires_at=context.expires_at,
            details={"granted_roles": list(config["granted_roles"])},
        )

    def revoke(self, handle: dict[str, Any]) -> None:
        role = handle["role"]
        with self._connection(handle["dsn_env"]) as conn, _errors_mapped():
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                return  # already gone: revocation is idempotent
            ident = sql.Identifier(role)
            # Block new logins first so nothing reconnects between the
            # terminate and the drop.
            conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(ident))
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                [role],
            )
            with conn.transaction():
                conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))

    def check(self, handle: dict[str, Any]) -> bool:
        with self._connection(handle["dsn_env"]) as conn, _errors_mapped():
            row = conn.execute(
                "SELECT rolcanlogin AND (rolvaliduntil IS NULL OR rolvaliduntil > now())"
                " FROM pg_roles WHERE rolname = %s",
                [handle["role"]],
            ).fetchone()
        return bool(row and row[0])

    def healthcheck(self, config: dict[str, Any]) -> None:
        with self._connection(config["dsn_env"]) as conn, _errors_mapped():
            conn.execute("SELECT 1")

    def validate_at_source(self, config: dict[str, Any], max_duration: timedelta) -> None:
        self.healthcheck(config)

    def live_handles(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        prefix = config.get("role_prefix", "airlock_")
        with self._connection(config["dsn_env"]) as conn, _errors_mapped():
            rows = conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [prefix]
            ).fetchall()
        return [{"role": name, "dsn_env": config["dsn_env"]} for (name,) in rows]

    @contextmanager
    def _connection(self, dsn_env: str) -> Iterator[psycopg.Connection]:
        """This thread's connection to the server `dsn_env` names, opened once and
        reused while it answers: a new one for every call cost the server a new
        process each time (bench/README.md, revocation lag). A call that fails
        closes it, so the next one starts afresh."""
        try:
            dsn = read_secret(dsn_env)
        except MissingSecret as exc:
            raise ProviderError(str(exc), permanent=True) from None
        # Keyed by process too: a connection inherited across fork() belongs to
        # the parent, and closing it here would end the parent's session.
        connections, key = _thread_connections(), (os.getpid(), dsn_env)
        held = connections.get(key)
        if held is not None and (held[0] != dsn or not _answers(held[1])):
            held[1].close()
            held = None
        if held is None:
            held = connections[key] = (dsn, _open(dsn))
        try:
            yield held[1]
        except BaseException:
            del connections[key]
            held[1].close()
            raise


_held = threading.local()


def _thread_connections() -> dict[tuple[int, str], tuple[str, psycopg.Connection]]:
    """This thread's open connections, by (process id, dsn_env): (dsn, connection)."""
    return _held.__dict__.setdefault("connections", {})


def _open(dsn: str) -> psycopg.Connection:
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=5, application_name="airlock")
    except psycopg.OperationalError as exc:
        raise ProviderError(f"cannot connect to PostgreSQL: {_first_line(exc)}") from None


def _answers(conn: psycopg.Connection) -> bool:
    if conn.closed or conn.broken:
        return False
    try:
        conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


@contextmanager
def _errors_mapped() -> Iterator[None]:
    """Turn psycopg errors into ProviderErrors that say whether a retry can help."""
    try:
        yield
    except psycopg.Error as exc:
        # Connection loss, lock timeouts and deadlocks pass; bad SQL, a missing
        # granted role or missing privileges do not.
        transient = isinstance(exc, psycopg.OperationalError)
        raise ProviderError(f"PostgreSQL: {_first_line(exc)}", permanent=not transient) from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
