"""`vault.database` on MariaDB, the second way to the legacy core: OpenBao's MySQL
plugin makes the account, as the least-privileged admin of `mysql.user`; its
revocation statements lock the account, end its sessions (through a procedure
that admin owns) and drop it. The credential works in the window, and a session
held open dies at revoke and at the lease's own expiry."""

from datetime import timedelta

import pymysql
import pytest
from django.utils import timezone

from integrations.vault.providers import VaultDatabaseProvider
from lib.providers import GrantContext
from tests.support.mariadb import answers, can_log_in, root_connection
from tests.support.pg_target import wait_until

MOUNT, ROLE = "mysqldb", "core"


@pytest.fixture(scope="module")
def core_on_vault(vault, mysql_target):
    """A MySQL database engine at `mysqldb` whose `core` role reads the core tables."""
    procedure = f"`{mysql_target.events}`.end_sessions"
    admin = f"'{mysql_target.admin}'@'%'"
    with root_connection() as conn, conn.cursor() as cursor:
        cursor.execute(f"DROP PROCEDURE IF EXISTS {procedure}")
        # The admin's own rights (CONNECTION ADMIN, PROCESS), nothing more: its definer.
        cursor.execute(
            f"CREATE DEFINER = {admin} PROCEDURE {procedure}(IN account VARCHAR(80))"
            " SQL SECURITY DEFINER BEGIN"
            " DECLARE done INT DEFAULT 0; DECLARE victim BIGINT;"
            " DECLARE victims CURSOR FOR SELECT ID FROM information_schema.PROCESSLIST"
            " WHERE USER = account;"
            " DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;"
            " OPEN victims; ending: LOOP FETCH victims INTO victim;"
            " IF done THEN LEAVE ending; END IF; KILL CONNECTION victim; END LOOP;"
            " CLOSE victims; END"
        )
        cursor.execute(f"GRANT EXECUTE ON PROCEDURE {procedure} TO {admin}")
    client = vault.client()
    client.sys.enable_secrets_engine("database", path=MOUNT)
    client.secrets.database.configure(
        name="core", plugin_name="mysql-database-plugin", mount_point=MOUNT,
        connection_url="{{username}}:{{password}}@tcp(127.0.0.1:3306)/",
        username=mysql_target.admin, password=mysql_target.password, allowed_roles=[ROLE],
    )  # fmt: skip
    client.secrets.database.create_role(
        name=ROLE, db_name="core", mount_point=MOUNT, default_ttl="1h", max_ttl="24h",
        creation_statements=[
            "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';",
            f"GRANT SELECT ON {mysql_target.core}.* TO '{{{{name}}}}'@'%';",
        ],
        revocation_statements=[
            "ALTER USER '{{name}}'@'%' ACCOUNT LOCK;",
            f"CALL {procedure}('{{{{name}}}}');",
            "DROP USER IF EXISTS '{{name}}'@'%';",
        ],
    )  # fmt: skip
    yield mysql_target
    client.sys.disable_secrets_engine(MOUNT)


def issue(seconds: int):
    context = GrantContext(
        grant_id="00000000-0000-4000-8000-0000000000bb", request_id="r", profile_id="core-vault",
        username="alice", config={"mount": MOUNT, "role": ROLE},
        expires_at=timezone.now() + timedelta(seconds=seconds),
    )  # fmt: skip
    return VaultDatabaseProvider().grant(context)


def session(credential: dict):
    return pymysql.connect(host="127.0.0.1", port=3306, user=credential["username"],
                           password=credential["password"], autocommit=True,
                           connect_timeout=5)  # fmt: skip


def reads(credential: dict, database: str) -> bool:
    as_account = {"host": "127.0.0.1", "port": 3306, "user": credential["username"],
                  "password": credential["password"]}  # fmt: skip
    return can_log_in(as_account, database)


def test_it_works_in_the_window_and_revoking_kills_its_sessions(core_on_vault):
    issued = issue(600)
    assert reads(issued.credential, core_on_vault.core)
    held = session(issued.credential)
    assert answers(held)
    VaultDatabaseProvider().revoke(issued.handle)
    assert not answers(held)
    assert not reads(issued.credential, core_on_vault.core)


def test_the_lease_ends_it_by_itself(core_on_vault):
    issued = issue(12)  # the lease ends a few seconds before that
    held = session(issued.credential)
    assert answers(held)
    assert wait_until(lambda: not answers(held), timeout=25, interval=0.5)
    assert not reads(issued.credential, core_on_vault.core)
