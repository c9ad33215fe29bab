"""`mysql.user` against the machine's MariaDB, as the least-privileged admin the
provider documents: alice's account works inside the window; revocation and
expiry each end a session held open across them and drop the account; the
server's own event ends it when Airlock is not there; reconciliation finds an
account no grant explains; bad configs are refused."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit import trail
from broker import lifecycle
from broker.catalog.load import CatalogError, parse_catalog
from broker.models import AccessProfile, Grant
from broker.reconcile import find_orphans
from lib.providers import GrantContext, ProviderError, get_provider
from tests.support.catalogs import TEST_CATALOG
from tests.support.grants import active_grant, reveal
from tests.support.mariadb import (
    account_exists,
    answers,
    can_log_in,
    core_profile,
    root_connection,
    session_of,
)
from tests.support.people import WEB
from tests.support.pg_target import wait_until


@pytest.fixture(params=["privileges", "role"])
def core(request, mysql_target, catalog):
    """core-db granting SELECT on the core database directly, or through a role."""
    grants = ({"privileges": [f"SELECT ON {mysql_target.core}.*"]} if request.param == "privileges"
              else {"granted_roles": [mysql_target.role]})  # fmt: skip
    text = TEST_CATALOG + core_profile(mysql_target, "core-db", **grants)
    lifecycle.catalog_sync(catalog=parse_catalog(text.encode()), info=trail.SYSTEM)
    return AccessProfile.objects.get(slug="core-db")


def granted(people, submit, step_up, duration="10m"):
    grant = active_grant(people, submit, step_up, duration=duration, slug="core-db")
    assert grant.status == "active", grant.last_error
    return grant, reveal(grant, people.alice, step_up)


def test_it_works_in_the_window_and_revoking_ends_it_sessions_included(
    core, mysql_target, people, submit, step_up
):
    grant, credential = granted(people, submit, step_up)
    assert can_log_in(credential, mysql_target.core)
    held = session_of(credential)
    with held.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {mysql_target.core}.payments")

    lifecycle.grant_revoke(grant_id=grant.pk, actor=people.alice, reason="done", info=WEB)
    lifecycle.grant_revoke_execute(grant_id=grant.pk)
    assert Grant.objects.get(pk=grant.pk).status == "revoked"
    assert not answers(held)  # killed, not only refused new logins
    assert not can_log_in(credential, mysql_target.core)
    assert not account_exists(credential["user"])
    assert not get_provider("mysql.user").check(grant.handle)


def test_the_server_ends_it_at_expiry_by_itself(core, mysql_target, people, submit, step_up):
    """No worker, no sweeper: only the event the grant left on the server."""
    _, credential = granted(people, submit, step_up, duration="6s")
    held = session_of(credential)
    assert answers(held)
    assert wait_until(lambda: not account_exists(credential["user"]), timeout=20)
    assert not answers(held)
    assert not can_log_in(credential, mysql_target.core)
    with root_connection() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM information_schema.EVENTS WHERE EVENT_NAME = %s",
                       [f"{credential['user']}_expiry"])  # fmt: skip
        assert cursor.fetchone()[0] == 0  # the event dropped itself


def test_an_account_no_grant_explains_is_an_orphan(core, mysql_target, people):
    spec = core.definition.provider
    provider = get_provider(spec.kind)
    issued = provider.grant(GrantContext(
        grant_id="00000000-0000-4000-8000-0000000000aa", request_id="x", profile_id="core-db",
        username="mallory", config=spec.config, expires_at=timezone.now() + timedelta(minutes=5),
    ))  # fmt: skip
    assert issued.handle in [orphan.handle for orphan in find_orphans().orphans]
    provider.revoke(issued.handle)
    assert issued.handle not in [orphan.handle for orphan in find_orphans().orphans]
    provider.revoke(issued.handle)  # idempotent


def test_check_catalog_online_says_when_the_event_scheduler_is_off(core, mysql_target):
    provider, spec = get_provider("mysql.user"), core.definition.provider
    with root_connection() as conn, conn.cursor() as cursor:
        cursor.execute("SET GLOBAL event_scheduler = OFF")
        try:
            with pytest.raises(ProviderError, match="event scheduler is off"):
                provider.validate_at_source(spec.config, timedelta(hours=2))
        finally:
            cursor.execute("SET GLOBAL event_scheduler = ON")
    provider.validate_at_source(spec.config, timedelta(hours=2))


@pytest.mark.parametrize(
    "config, message",
    [
        ({"privileges": ["ALL ON core.*"]}, "gives too much"),
        ({"privileges": ["SELECT ON core.*; DROP USER root"]}, "is not like"),
        ({"privileges": ["SELECT, GRANT OPTION ON core.*"]}, "gives too much"),
        ({"granted_roles": ["core reader"]}, "not a plain role name"),
        ({"user_prefix": "a_very_long_prefix_"}, "1-10 long"),
        ({"max_user_connections": 0}, "from 1 to 100"),
        ({"event_schema": "x`; DROP"}, "lowercase identifier"),
    ],
)
def test_a_config_that_could_do_harm_is_refused(mysql_target, config, message):
    base = {"privileges": ["SELECT ON core.*"]}
    text = TEST_CATALOG + core_profile(mysql_target, "core-db", **{**base, **config})
    with pytest.raises(CatalogError, match=message):
        parse_catalog(text.encode())
