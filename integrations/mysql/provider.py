"""`mysql.user`: a short-lived MariaDB or MySQL account.

A user per grant with a random password, the profile's roles or privileges and
`MAX_USER_CONNECTIONS`. Neither server can make a password expire at a given
moment, so the hard expiry at the source is an event of the server's event
scheduler, created with the user: at the grant's end it locks the account,
kills its sessions and drops it, even if Airlock is down. Revocation does the
same from here: lock (no new login), kill every session (DROP USER does not),
drop, each step idempotent.

The admin (the DSN in `dsn_env`) needs, on the server: CREATE USER; the granted
roles WITH ADMIN OPTION (or the granted privileges WITH GRANT OPTION);
CONNECTION ADMIN (MariaDB 10.5+, MySQL 8: to kill other users' sessions; SUPER
before); PROCESS (to see them); SELECT on mysql.user (reconciliation); and
EVENT on `event_schema`. The event scheduler must be on (`event_scheduler=ON`):
`check_catalog --online` says when it is not.
"""

import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql
import pymysql.err

from lib.providers import (
    GrantContext,
    Issued,
    ProviderConfigError,
    ProviderError,
    admin_dsn_missing,
)
from lib.secrets import MissingSecret, read_secret

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,31}$")
# Short enough that the prefix, 20 hex digits and an extension's "x2" fit in
# MySQL 8's 32 characters.
PREFIX = re.compile(r"^[a-z_][a-z0-9_]{0,9}$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# "SELECT, INSERT ON core.*": privileges (letters and spaces) on a database's tables.
PRIVILEGE = re.compile(r"[A-Z][A-Z ]*(, *[A-Z][A-Z ]*)* ON [a-z_][a-z0-9_]*\.(\*|[a-z_][a-z0-9_]*)")
SYSTEM_SCHEMAS = {"mysql", "sys", "information_schema", "performance_schema"}
ALLOWED_KEYS = {
    "dsn_env", "granted_roles", "privileges", "user_prefix", "max_user_connections",
    "require_tls", "event_schema", "host", "port",
}  # fmt: skip
ACCOUNT_HOST = "%"
HOST = re.compile(r"[A-Za-z0-9.:-]{1,253}")
# What grant() names accounts: the prefix, 20 hex digits, "x" and an extension's serial.
ACCOUNT = re.compile(r"^[a-z_][a-z0-9_]{0,9}[0-9a-f]{20}(x[0-9]+)?$")


class MysqlUserProvider:
    kind = "mysql.user"
    revocation_note = (
        "Revoking locks the account, kills its open sessions and drops it. The server's "
        "event scheduler also does so by itself at the grant's end."
    )
    needs_public_key = False
    extends_in_place = False
    min_duration = timedelta(seconds=5)

    def validate_config(self, config: dict[str, Any]) -> None:
        unknown = set(config) - ALLOWED_KEYS
        if unknown:
            raise ProviderConfigError(f"unknown keys: {', '.join(sorted(unknown))}")
        dsn_env = config.get("dsn_env")
        if not isinstance(dsn_env, str) or not ENV_NAME.fullmatch(dsn_env):
            raise ProviderConfigError(
                "dsn_env must name the environment variable that holds the admin DSN"
            )
        roles, privileges = config.get("granted_roles", []), config.get("privileges", [])
        if not isinstance(roles, list) or not isinstance(privileges, list):
            raise ProviderConfigError("granted_roles and privileges are lists")
        if not roles and not privileges:
            raise ProviderConfigError("give granted_roles, privileges, or both")
        for role in roles:
            if not isinstance(role, str) or not IDENTIFIER.fullmatch(role):
                raise ProviderConfigError(f"granted_roles: {role!r} is not a plain role name")
        schema = config.get("event_schema", "airlock_")
        for privilege in privileges:
            if (
                not isinstance(privilege, str)
                or not PRIVILEGE.fullmatch(privilege)
                or privilege.count(" ON ") != 1
            ):
                raise ProviderConfigError(
                    f'privileges: {privilege!r} is not like "SELECT, INSERT ON core.*"'
                )
            what, where = privilege.split(" ON ")
            if "GRANT" in what or "ALL" in what.split():
                raise ProviderConfigError(f"privileges: {privilege!r} gives too much")
            if where.split(".")[0] in {*SYSTEM_SCHEMAS, schema}:
                # The server's own tables, or the expiry events the grantee could drop.
                raise ProviderConfigError(f"privileges: {privilege!r} is on a schema Airlock keeps")
        prefix = config.get("user_prefix", "airlock_")
        if not isinstance(prefix, str) or not PREFIX.fullmatch(prefix):
            raise ProviderConfigError("user_prefix must be a lowercase identifier, 1-10 long")
        schema = config.get("event_schema", "airlock_")
        if not isinstance(schema, str) or not IDENTIFIER.fullmatch(schema):
            raise ProviderConfigError("event_schema must be a lowercase identifier")
        limit = config.get("max_user_connections", 3)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
            raise ProviderConfigError("max_user_connections must be an integer from 1 to 100")
        if not isinstance(config.get("require_tls", False), bool):
            raise ProviderConfigError("require_tls is true or false")
        host, port = config.get("host", "db"), config.get("port", 3306)
        if not isinstance(host, str) or not HOST.fullmatch(host):
            raise ProviderConfigError("host must be a host name or address")
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise ProviderConfigError("port must be a TCP port")

    def target(self, config: dict[str, Any]) -> str:
        return f"mysql:{config['dsn_env']}"

    def missing_configuration(self, config: dict[str, Any]) -> str | None:
        return admin_dsn_missing(config["dsn_env"])

    def present(self, credential: dict[str, Any]) -> list[tuple[str, str]]:
        c = credential
        options = " --ssl" if c.get("require_tls") else ""
        if c.get("role"):
            options += f" --init-command='SET ROLE {c['role']}'"
        return [
            ("mysql", f"mysql -h {c['host']} -P {c['port']} -u {c['user']} -p{options}"),
            ("User", c["user"]),
            ("Password", c["password"]),
        ]

    def grant(self, context: GrantContext) -> Issued:
        config = context.config
        user = config.get("user_prefix", "airlock_") + context.grant_id.replace("-", "")[:20]
        if context.serial:
            user += f"x{context.serial}"
        # A symbol, a digit and both cases whatever the random part holds: servers with
        # a password policy (validate_password, simple_password_check) ask for them.
        password = f"{secrets.token_urlsafe(24)}-Aa1"
        with self._connection(config["dsn_env"]) as conn, _errors_mapped():
            _create_user(conn, user, password, config, context.expires_at)
        server = _server(read_secret(config["dsn_env"]), config["dsn_env"])
        return Issued(
            credential={
                "kind": "mysql",
                "host": config.get("host") or server["host"],
                "port": int(config.get("port") or server["port"]),
                "user": user,
                "password": password,
                "require_tls": bool(config.get("require_tls", False)),
                # Its rights come through this role: SET ROLE it if it is not the default.
                "role": (config.get("granted_roles") or [""])[0],
            },
            handle={
                "user": user,
                "dsn_env": config["dsn_env"],
                "event_schema": _event_schema(config),
            },
            expires_at=context.expires_at,
            details={
                "granted_roles": list(config.get("granted_roles", [])),
                "privileges": list(config.get("privileges", [])),
            },
        )

    def revoke(self, handle: dict[str, Any]) -> None:
        user = handle["user"]
        with self._connection(handle["dsn_env"]) as conn:
            with _errors_mapped(f"could not lock {user}"):
                if _user_exists(conn, user):
                    _execute(conn, "ALTER USER %s@%s ACCOUNT LOCK", [user, ACCOUNT_HOST])
            with _errors_mapped(f"{user} is locked, but its sessions could not be killed"):
                _kill_sessions(conn, user)
            with _errors_mapped(f"{user} has no session left, but could not be dropped"):
                _execute(conn, "DROP USER IF EXISTS %s@%s", [user, ACCOUNT_HOST])
                _execute(conn, f"DROP EVENT IF EXISTS {_event(handle)}")

    def check(self, handle: dict[str, Any]) -> bool:
        """Live while it can log in, or while a session of it runs."""
        with self._connection(handle["dsn_env"]) as conn, _errors_mapped():
            return _user_exists(conn, handle["user"]) or bool(_sessions(conn, handle["user"]))

    def healthcheck(self, config: dict[str, Any]) -> None:
        with self._connection(config["dsn_env"]) as conn, _errors_mapped():
            _execute(conn, "SELECT 1")

    def validate_at_source(self, config: dict[str, Any], max_duration: timedelta) -> None:
        """The server answers and its event scheduler runs: without it the account
        would outlive the grant whenever Airlock is down."""
        with self._connection(config["dsn_env"]) as conn, _errors_mapped():
            rows = _execute(conn, "SELECT @@GLOBAL.event_scheduler")
        if str(rows[0][0]).upper() != "ON":
            raise ProviderError(
                "the server's event scheduler is off (SET GLOBAL event_scheduler = ON, and "
                "event_scheduler=ON in its configuration): accounts would outlive their "
                "grants whenever Airlock is down",
                permanent=True,
            )

    def live_handles(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """Accounts named as grant() names them (the prefix and 20 hex digits), never
        another account that merely starts with the prefix (a DBA's, an admin's). An
        account whose expiry event lives in another profile's event schema belongs
        to that profile (its grant's handle names that schema)."""
        prefix = config.get("user_prefix", "airlock_")
        with self._connection(config["dsn_env"]) as conn, _errors_mapped():
            rows = _execute(
                conn,
                "SELECT u.User, e.EVENT_SCHEMA FROM mysql.user u LEFT JOIN"
                " information_schema.EVENTS e ON e.EVENT_NAME = CONCAT(u.User, '_expiry')"
                " WHERE u.User LIKE %s AND u.Host = %s"
                " AND u.User <> SUBSTRING_INDEX(CURRENT_USER(), '@', 1)",
                [prefix.replace("_", "\\_") + "%", ACCOUNT_HOST],
            )
        mine = _event_schema(config)
        return [
            {"user": name, "dsn_env": config["dsn_env"], "event_schema": schema or mine}
            for name, schema in rows
            if ACCOUNT.fullmatch(name) and name.startswith(prefix) and (schema or mine) == mine
        ]

    @contextmanager
    def _connection(self, dsn_env: str) -> Iterator[pymysql.connections.Connection]:
        """This thread's connection to the server `dsn_env` names, reused while it
        answers; a call that fails closes it, so the next one starts afresh."""
        try:
            dsn = read_secret(dsn_env)
        except MissingSecret as exc:
            raise ProviderError(str(exc), permanent=True) from None
        held = _held.__dict__.setdefault("connections", {})
        conn = held.get(dsn_env)
        if conn is not None and (conn[0] != dsn or not _answers(conn[1])):
            conn[1].close()
            conn = None
        if conn is None:
            conn = held[dsn_env] = (dsn, _open(dsn, dsn_env))
        try:
            yield conn[1]
        except BaseException:
            del held[dsn_env]
            conn[1].close()
            raise


_held = threading.local()


def _server(dsn: str, dsn_env: str = "the admin DSN") -> dict[str, Any]:
    """Host and port of a mysql:// URL. urllib's errors quote the part they cannot
    read, which may be the password: none of that reaches a message or a log."""
    parts = urlsplit(dsn)
    try:
        port = parts.port or 3306
    except ValueError:
        port = None
    if parts.scheme not in ("mysql", "mariadb") or port is None:
        raise ProviderError(
            f"{dsn_env} must be a mysql://USER:PASSWORD@HOST:PORT/ URL (percent-encode the "
            "password's special characters)",
            permanent=True,
        )
    return {"host": parts.hostname or "localhost", "port": port}


def _open(dsn: str, dsn_env: str) -> pymysql.connections.Connection:
    server, parts = _server(dsn, dsn_env), urlsplit(dsn)
    try:
        return pymysql.connect(
            host=server["host"],
            port=server["port"],
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            autocommit=True,
            connect_timeout=5,
            charset="utf8mb4",
        )
    except pymysql.err.MySQLError as exc:
        raise ProviderError(f"cannot connect to MySQL: {_message(exc)}") from None


def _answers(conn) -> bool:
    try:
        conn.ping(reconnect=False)
    except pymysql.err.MySQLError:
        return False
    return True


def _execute(conn, statement: str, arguments: list | None = None) -> tuple:
    with conn.cursor() as cursor:
        cursor.execute(statement, arguments)
        return cursor.fetchall()


def _user_exists(conn, user: str) -> bool:
    found = _execute(
        conn, "SELECT 1 FROM mysql.user WHERE User = %s AND Host = %s", [user, ACCOUNT_HOST]
    )
    return bool(found)


def _sessions(conn, user: str) -> list[int]:
    rows = _execute(conn, "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", [user])
    return [row[0] for row in rows]


def _kill_sessions(conn, user: str) -> None:
    for session in _sessions(conn, user):
        try:
            _execute(conn, "KILL CONNECTION %s", [session])
        except pymysql.err.InternalError as exc:
            if exc.args[0] != UNKNOWN_THREAD:
                raise
    # KILL marks a session; the server ends it when the session next looks, which
    # on a busy server can be after KILL returns: wait a moment before retrying.
    deadline = time.monotonic() + KILL_WAIT_SECONDS
    while left := _sessions(conn, user):
        if time.monotonic() >= deadline:
            raise ProviderError(f"{len(left)} session(s) still running", permanent=False)
        time.sleep(0.05)


UNKNOWN_THREAD = 1094  # it ended by itself meanwhile
KILL_WAIT_SECONDS = 2.0


def _event_schema(config: dict[str, Any]) -> str:
    return config.get("event_schema", "airlock_")


def _event(handle: dict[str, Any]) -> str:
    """The expiry event's name, quoted: both parts are checked identifiers."""
    return f"`{handle['event_schema']}`.`{handle['user']}_expiry`"


def _create_user(conn, user: str, password: str, config: dict[str, Any], until: datetime) -> None:
    """Create the account, or update it (its name comes from the grant id: a retried
    activation finds the account it made before), and the event that ends it."""
    # The event first: whatever fails after CREATE USER, the account still ends on time.
    _create_expiry_event(conn, user, until, _event_schema(config))
    tls = " REQUIRE SSL" if config.get("require_tls") else ""
    limit = int(config.get("max_user_connections", 3))
    verb = "ALTER" if _user_exists(conn, user) else "CREATE"
    _execute(
        conn,
        f"{verb} USER %s@%s IDENTIFIED BY %s{tls} WITH MAX_USER_CONNECTIONS {limit}",
        [user, ACCOUNT_HOST, password],
    )
    for role in config.get("granted_roles", []):
        _execute(conn, f"GRANT `{role}` TO %s@%s", [user, ACCOUNT_HOST])
    if roles := config.get("granted_roles"):
        _set_default_role(conn, user, roles[0])
    for privilege in config.get("privileges", []):
        what, where = privilege.split(" ON ")
        _execute(conn, f"GRANT {what} ON {where} TO %s@%s", [user, ACCOUNT_HOST])


def _set_default_role(conn, user: str, role: str) -> None:
    """Make the first role active from login. MariaDB lets only an admin with write
    access to the mysql schema do so for another account, which this provider does
    not ask for: there the engineer runs SET ROLE (the credential says how)."""
    mariadb = "mariadb" in str(_execute(conn, "SELECT VERSION()")[0][0]).lower()
    preposition = "FOR" if mariadb else "TO"  # the same statement, said two ways
    try:
        _execute(conn, f"SET DEFAULT ROLE `{role}` {preposition} %s@%s", [user, ACCOUNT_HOST])
    except pymysql.err.OperationalError as exc:
        if exc.args[0] not in (ACCESS_DENIED_TO_DATABASE, ACCESS_DENIED):
            raise


ACCESS_DENIED_TO_DATABASE, ACCESS_DENIED = 1044, 1227


def _create_expiry_event(conn, user: str, until: datetime, schema: str) -> None:
    """At `until` (UTC), the server itself locks the account, kills its sessions and
    drops it; the event then drops itself."""
    if not ACCOUNT.fullmatch(user) or not IDENTIFIER.fullmatch(schema):
        raise ProviderError(f"{user!r} is not an account name Airlock makes", permanent=True)
    handle = {"user": user, "event_schema": schema}
    account = f"'{user}'@'{ACCOUNT_HOST}'".replace("%", "%%")  # the statement is formatted
    _execute(conn, "SET time_zone = '+00:00'")
    # DROP then CREATE: MySQL has no CREATE OR REPLACE EVENT.
    _execute(conn, f"DROP EVENT IF EXISTS {_event(handle)}")
    _execute(
        conn,
        # Names checked just above: a stored program's body takes no placeholders.
        f"CREATE EVENT {_event(handle)} ON SCHEDULE AT %s DO BEGIN"  # noqa: S608  # nosec B608
        " DECLARE done INT DEFAULT 0; DECLARE victim BIGINT;"
        " DECLARE victims CURSOR FOR SELECT ID FROM information_schema.PROCESSLIST"
        f" WHERE USER = '{user}';"
        " DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;"
        " DECLARE CONTINUE HANDLER FOR SQLEXCEPTION BEGIN END;"
        f" ALTER USER {account} ACCOUNT LOCK;"
        " OPEN victims; ending: LOOP FETCH victims INTO victim;"
        " IF done THEN LEAVE ending; END IF; KILL CONNECTION victim; END LOOP;"
        f" CLOSE victims; DROP USER IF EXISTS {account}; END",
        [until.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")],
    )


def _message(exc: pymysql.err.MySQLError) -> str:
    return str(exc.args[1]) if len(exc.args) > 1 else type(exc).__name__


@contextmanager
def _errors_mapped(doing: str = "") -> Iterator[None]:
    """MySQL errors as ProviderErrors that say what failed and whether a retry helps:
    a lost connection or a lock wait may pass; bad SQL or missing privileges not."""
    prefix = f"{doing}: " if doing else ""
    try:
        yield
    except pymysql.err.OperationalError as exc:
        transient = exc.args and exc.args[0] in TRANSIENT
        raise ProviderError(f"MySQL: {prefix}{_message(exc)}", permanent=not transient) from None
    except pymysql.err.MySQLError as exc:
        raise ProviderError(f"MySQL: {prefix}{_message(exc)}", permanent=True) from None
    except ProviderError as exc:
        if not doing:
            raise
        raise ProviderError(f"MySQL: {prefix}{exc}", permanent=exc.permanent) from None


# Lost connection, server gone, lock wait timeout, deadlock, too many connections.
TRANSIENT = {2003, 2006, 2013, 1205, 1213, 1040}
