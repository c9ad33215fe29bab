"""`postgres.role`: a short-lived PostgreSQL login role.

The role is created with `VALID UNTIL` the grant's expiry, so PostgreSQL
itself refuses password logins after that moment even if Airlock is down.
Revocation blocks new logins, ends the role's sessions (which VALID UNTIL does
not) and drops it, as the least-privileged admin README.md documents as well as
a superuser; the health check and `check_catalog --online` prove it with a dry run.

The password goes to the server as a SCRAM-SHA-256 verifier computed here, so
the plaintext never appears in a statement that the server could log.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from lib.providers import (
    GrantContext,
    Issued,
    ProviderConfigError,
    ProviderError,
    admin_dsn_missing,
)
from lib.secrets import MissingSecret, read_secret

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
ALLOWED_KEYS = {"dsn_env", "granted_roles", "role_prefix", "connection_limit", "host", "port"}
SCRAM_ITERATIONS = 4096
# How long revocation waits for each of the role's sessions to end.
TERMINATE_WAIT_MS = 5000
# Dry runs' probe roles are named role_prefix + PROBE_MARK + 12 hex digits (after
# the prefix, a grant's role name has only hex digits and "x") and live at most
# PROBE_LIFETIME at the source.
PROBE_MARK = "probe_"
PROBE_LIFETIME = timedelta(seconds=60)
DRY_RUN_EVERY = 300  # seconds a health check's dry run outcome is kept


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
    revocation_note = (
        "Revoking ends the role's open sessions and drops the role. PostgreSQL also"
        " refuses new logins at the grant's end by itself."
    )
    needs_public_key = False
    extends_in_place = False
    min_duration = timedelta(seconds=1)

    def __init__(self) -> None:
        # The outcome of the last revocation dry run per configuration (healthcheck).
        self._dry_runs: dict[str, tuple[float, str]] = {}

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

    def present(self, credential: dict[str, Any]) -> list[tuple[str, str]]:
        c = credential
        url = (
            f"postgresql://{quote(c['user'], safe='')}:{quote(c['password'], safe='')}"
            f"@{c['host']}:{c['port']}/{quote(c['dbname'], safe='')}"
        )
        return [
            ("Connection string", url),
            ("psql", f"psql '{url}'"),
            ("User", c["user"]),
            ("Password", c["password"]),
        ]

    def grant(self, context: GrantContext) -> Issued:
        config = context.config
        role = config.get("role_prefix", "airlock_") + context.grant_id.replace("-", "")[:20]
        if context.serial:
            role += f"x{context.serial}"  # an extension's new role beside the old one
        password = secrets.token_urlsafe(32)
        with self._connection(config["dsn_env"]) as conn, _errors_mapped():
            _create_role(conn, role, config, context.expires_at, password)
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
        """Take the role's access away in three steps, each committed on its own so
        that a step the server refuses leaves what the earlier ones did, and each
        idempotent so that a retry finishes the job:

        1. the role can no longer log in nor use the roles it was granted;
        2. its sessions end: a session that ran `SET ROLE` to a granted role keeps
           that role's rights until then, whatever step 1 took away;
        3. it is dropped, once no session of it is left.
        """
        role = handle["role"]
        with self._connection(handle["dsn_env"]) as conn:
            with _errors_mapped():
                if not _role_exists(conn, role):
                    return  # already gone: revocation is idempotent
            with _errors_mapped(f"could not disable {role}"):
                _disable(conn, role)
            with _errors_mapped(
                f"{role} cannot log in any more, but its sessions could not be ended"
            ):
                _end_sessions(conn, role)
            with _errors_mapped(f"{role} has no session left, but could not be dropped"):
                _drop(conn, role)

    def check(self, handle: dict[str, Any]) -> bool:
        """Live while it can log in, or while a session of it runs: VALID UNTIL
        refuses new logins only."""
        with self._connection(handle["dsn_env"]) as conn, _errors_mapped():
            row = conn.execute(
                "SELECT (rolcanlogin AND (rolvaliduntil IS NULL OR rolvaliduntil > now()))"
                " OR EXISTS (SELECT 1 FROM pg_stat_activity WHERE usename = rolname)"
                " FROM pg_roles WHERE rolname = %s",
                [handle["role"]],
            ).fetchone()
        return bool(row and row[0])

    def target(self, config: dict[str, Any]) -> str:
        return f"postgres:{config['dsn_env']}"  # names the server without its secret

    def missing_configuration(self, config: dict[str, Any]) -> str | None:
        return admin_dsn_missing(config["dsn_env"])

    def healthcheck(self, config: dict[str, Any]) -> None:
        """The server answers, and revocation works as this admin.

        The dry run behind the second half creates and drops a role and opens a
        session, and an admin's privileges change by a DBA's hand, not by the
        second; so its outcome is kept for DRY_RUN_EVERY seconds in this process
        while /readyz asks every few seconds. A transient failure is not kept.
        """
        with self._connection(config["dsn_env"]) as conn, _errors_mapped():
            conn.execute("SELECT 1")
        key = _dry_run_key(config)
        kept = self._dry_runs.get(key)
        if kept is None or time.monotonic() - kept[0] >= DRY_RUN_EVERY:
            try:
                self.revocation_dry_run(config)
            except ProviderError as exc:
                if not exc.permanent:
                    raise
                kept = (time.monotonic(), str(exc))
            else:
                kept = (time.monotonic(), "")
            self._dry_runs[key] = kept
        if kept[1]:
            raise ProviderError(kept[1], permanent=True)

    def validate_at_source(self, config: dict[str, Any], max_duration: timedelta) -> None:
        self.revocation_dry_run(config)

    def revocation_dry_run(self, config: dict[str, Any]) -> None:
        """Prove that this admin can grant and revoke: make a probe role as a grant
        would, log in as it and switch to a granted role, revoke it with the same
        code as a grant, and check that its session ended and the role is gone.

        The probe can log in for PROBE_LIFETIME at most (VALID UNTIL), is dropped
        here whatever happens (if this admin can), and is named so that
        reconciliation leaves it alone while it may be in use and takes it for an
        orphan after.
        """
        role = config.get("role_prefix", "airlock_") + PROBE_MARK + secrets.token_hex(6)
        handle = {"role": role, "dsn_env": config["dsn_env"]}
        password = secrets.token_urlsafe(32)
        session = None
        try:
            with (
                self._connection(config["dsn_env"]) as conn,
                _errors_mapped(f"could not create the probe role {role}"),
            ):
                _create_role(conn, role, config, datetime.now(UTC) + PROBE_LIFETIME, password)
            session = _probe_session(config, role, password)
            # As an engineer may: the session then acts as the granted role.
            with _errors_mapped(f"the probe role {role} could not SET ROLE"):
                granted = sql.Identifier(config["granted_roles"][0])
                session.execute(sql.SQL("SET ROLE {}").format(granted))
            self.revoke(handle)
            if _answers(session):
                raise ProviderError(f"revoking {role} left its session running", permanent=True)
            with self._connection(config["dsn_env"]) as conn, _errors_mapped():
                left_in_place = _role_exists(conn, role)
            if left_in_place:
                raise ProviderError(f"revoking {role} left the role in place", permanent=True)
        except ProviderError as exc:
            raise ProviderError(f"revocation dry run: {exc}", permanent=exc.permanent) from None
        finally:
            if session is not None:
                session.close()
            with suppress(ProviderError):
                self.revoke(handle)

    def live_handles(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """Roles with the profile's prefix, but for a dry run's probe that may still
        be in use, and the admin itself (never revoke yourself)."""
        prefix = config.get("role_prefix", "airlock_")
        probe = re.compile(re.escape(prefix + PROBE_MARK) + "[0-9a-f]{12}")
        with self._connection(config["dsn_env"]) as conn, _errors_mapped():
            rows = conn.execute(
                # Compared in SQL: VALID UNTIL 'infinity' has no Python datetime.
                "SELECT rolname, coalesce(rolvaliduntil > now()"
                " AND rolvaliduntil <= now() + %s, false) FROM pg_roles"
                " WHERE starts_with(rolname, %s) AND rolname <> current_user",
                [PROBE_LIFETIME, prefix],
            ).fetchall()
        # An older probe was left by a dry run that died: reconciliation's to clean up.
        return [
            {"role": name, "dsn_env": config["dsn_env"]}
            for name, ends_soon in rows
            if not (ends_soon and probe.fullmatch(name))
        ]

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
        try:
            conninfo_to_dict(dsn)
        except psycopg.ProgrammingError:
            # libpq quotes the piece it cannot parse, which may be the password.
            raise ProviderError(
                f"{dsn_env} does not hold a PostgreSQL connection string libpq can read "
                "(in a URL, percent-encode the password's special characters)",
                permanent=True,
            ) from None
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


def _role_exists(conn: psycopg.Connection, role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is not None


OLDEST_SERVER = 150000


def refuse_old_server(version: int) -> None:
    """Before PostgreSQL 15 a login role may grant itself to other roles: the
    engineer could hand her temporary role to another login she uses, and that
    login's sessions (acting as a granted role after SET ROLE) are not the
    temporary role's, so revocation would not end them."""
    if version < OLDEST_SERVER:
        raise ProviderError(
            f"postgres.role needs PostgreSQL 15 or later (this server is {version // 10000}): "
            "before 15 a role may grant itself to other roles, whose sessions revocation "
            "would not end",
            permanent=True,
        )


def _create_role(
    conn: psycopg.Connection,
    role: str,
    config: dict[str, Any],
    valid_until: datetime,
    password: str,
) -> None:
    """Create the login role, or update it: its name comes from the grant id, so a
    retried activation updates the role it created before instead of failing."""
    refuse_old_server(conn.info.server_version)
    options = sql.SQL(
        "LOGIN INHERIT CONNECTION LIMIT {limit} VALID UNTIL {until} PASSWORD {verifier}"
    ).format(
        limit=sql.Literal(config.get("connection_limit", 5)),
        until=sql.Literal(valid_until.isoformat()),
        verifier=sql.Literal(scram_sha256_verifier(password)),
    )
    granted = sql.SQL(", ").join(sql.Identifier(name) for name in config["granted_roles"])
    verb = "ALTER" if _role_exists(conn, role) else "CREATE"
    with conn.transaction():
        conn.execute(sql.SQL(verb + " ROLE {} WITH {}").format(sql.Identifier(role), options))
        conn.execute(sql.SQL("GRANT {} TO {}").format(granted, sql.Identifier(role)))


def _disable(conn: psycopg.Connection, role: str) -> None:
    """Revocation's first step. The ALTER commits before the memberships are
    revoked, so that new logins stay refused even if a REVOKE is."""
    ident = sql.Identifier(role)
    conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN CONNECTION LIMIT 0 PASSWORD NULL").format(ident))
    memberships = conn.execute(
        "SELECT DISTINCT granted.rolname FROM pg_auth_members m"
        " JOIN pg_roles granted ON granted.oid = m.roleid"
        " JOIN pg_roles member ON member.oid = m.member"
        " WHERE member.rolname = %s",
        [role],
    ).fetchall()
    for (granted,) in memberships:
        conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(granted), ident))


def _end_sessions(conn: psycopg.Connection, role: str) -> None:
    """Revocation's second step. pg_terminate_backend (and DROP OWNED after it)
    needs the privileges of the role whose sessions it ends; a non-superuser admin
    gets them by granting itself the role, which CREATEROLE allows on PostgreSQL
    15 and ADMIN OPTION (that a role's creator has) on 16+, where INHERIT must be
    asked for. That is narrower than pg_signal_backend, which could end any
    non-superuser's session on the server."""
    ident = sql.Identifier(role)
    if not conn.execute("SELECT pg_has_role(current_user, %s, 'USAGE')", [role]).fetchone()[0]:
        inherit = " WITH INHERIT TRUE" if conn.info.server_version >= 160000 else ""
        conn.execute(sql.SQL("GRANT {} TO CURRENT_USER" + inherit).format(ident))
    conn.execute(
        "SELECT pg_terminate_backend(pid, %s) FROM pg_stat_activity WHERE usename = %s",
        [TERMINATE_WAIT_MS, role],
    )
    (left,) = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", [role]
    ).fetchone()
    if left:
        # Not dropped while a session runs: a dropped role's sessions go on unnamed.
        raise ProviderError(f"{left} session(s) still running", permanent=False)


def _drop(conn: psycopg.Connection, role: str) -> None:
    """Revocation's last step."""
    ident = sql.Identifier(role)
    with conn.transaction():
        conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))


def _probe_session(config: dict[str, Any], role: str, password: str) -> psycopg.Connection:
    """A session of the dry run's probe role, logged in as an engineer would."""
    dsn = make_conninfo(
        read_secret(config["dsn_env"]),
        user=role,
        password=password,
        application_name="airlock-probe",  # not one of the admin sessions Airlock keeps
    )
    try:
        session = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise ProviderError(f"the probe role {role} could not log in: {_first_line(exc)}") from None
    return session


def _dry_run_key(config: dict[str, Any]) -> str:
    # The DSN is part of it: a new admin gets a dry run of its own.
    dsn = read_secret(config["dsn_env"])
    return hashlib.sha256(json.dumps([dsn, config], sort_keys=True).encode()).hexdigest()


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
def _errors_mapped(doing: str = "") -> Iterator[None]:
    """Turn psycopg errors (and ProviderErrors raised inside) into ProviderErrors
    that say what failed and whether a retry can help."""
    prefix = f"{doing}: " if doing else ""
    try:
        yield
    except psycopg.Error as exc:
        # Connection loss, lock timeouts and deadlocks pass; bad SQL, a missing
        # granted role or missing privileges do not.
        transient = isinstance(exc, psycopg.OperationalError)
        raise ProviderError(
            f"PostgreSQL: {prefix}{_first_line(exc)}", permanent=not transient
        ) from None
    except ProviderError as exc:
        if not doing:
            raise
        raise ProviderError(f"PostgreSQL: {prefix}{exc}", permanent=exc.permanent) from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
