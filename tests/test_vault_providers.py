"""vault.token and vault.database against a real OpenBao server."""

import json
import time
import uuid
from datetime import timedelta
from pathlib import Path

import hvac
import psycopg
import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from hvac import exceptions as vault_errors

from integrations.vault.providers import (
    VALID_UNTIL_PAD,
    VaultDatabaseProvider,
    VaultTokenProvider,
)
from integrations.vault.sandbox import DATABASE_REVOCATION, set_reader_role
from lib.providers import GrantContext, ProviderError
from tests.support.pg_target import can_login

pytestmark = pytest.mark.django_db


def context(config: dict, seconds: float = 600) -> GrantContext:
    return GrantContext(
        grant_id=str(uuid.uuid4()),
        request_id=str(uuid.uuid4()),
        profile_id="p",
        username="alice",
        config=config,
        expires_at=timezone.now() + timedelta(seconds=seconds),
    )


def read_payments(vault, token: str) -> dict:
    client = hvac.Client(url=vault.address, token=token)
    return client.secrets.kv.v2.read_secret_version("payments", raise_on_deleted_version=True)[
        "data"
    ]["data"]


def test_token_reads_what_its_policy_allows_then_dies_on_revoke(vault):
    provider = VaultTokenProvider()
    ctx = context({"policies": ["payments-read"]}, seconds=600)
    issued = provider.grant(ctx)
    token = issued.credential["token"]
    assert read_payments(vault, token) == {"api_key": "k-123"}
    info = vault.client().auth.token.lookup(token)["data"]
    assert info["renewable"] is False and info["orphan"] is True
    assert 590 <= info["explicit_max_ttl"] <= 600 and info["meta"]["airlock_user"] == "alice"
    assert issued.expires_at <= ctx.expires_at
    assert set(issued.handle) == {"accessor"}  # never the token itself
    assert provider.check(issued.handle)

    provider.revoke(issued.handle)
    with pytest.raises(vault_errors.Forbidden):
        read_payments(vault, token)
    assert not provider.check(issued.handle)
    provider.revoke(issued.handle)  # already gone is success


def test_token_expires_by_itself_at_the_source(vault):
    issued = VaultTokenProvider().grant(context({"policies": ["payments-read"]}, seconds=2))
    assert read_payments(vault, issued.credential["token"])
    time.sleep(2.5)
    with pytest.raises(vault_errors.Forbidden):
        read_payments(vault, issued.credential["token"])


def test_database_credentials_connect_with_a_bounded_lease_then_die(vault, pg_target):
    provider = VaultDatabaseProvider()
    ctx = context({"mount": "database", "role": "reader"}, seconds=300)
    issued = provider.grant(ctx)
    c = issued.credential
    dsn = f"postgresql://{c['username']}:{c['password']}@127.0.0.1:{pg_target.port}/postgres"
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM payments").fetchone() == (2,)
    with psycopg.connect(pg_target.admin_dsn) as conn:
        (valid_until,) = conn.execute(
            "SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", [c["username"]]
        ).fetchone()
    # The role's default TTL is 1h; the lease and VALID UNTIL follow the 5-minute grant.
    assert abs((valid_until - ctx.expires_at).total_seconds()) < 5
    lease = vault.client().sys.read_lease(issued.handle["lease_id"])["data"]
    assert lease["ttl"] <= 300

    provider.revoke(issued.handle)
    assert not can_login(dsn)
    assert not provider.check(issued.handle)
    provider.revoke(issued.handle)


def test_neither_the_lease_nor_valid_until_outlives_the_grant(vault, pg_target):
    """OpenBao sets the role's VALID UNTIL some seconds past the lease's end at each
    renewal: the renewal asks for that much less, measured here, not guessed."""
    ctx = context({"mount": "database", "role": "reader"}, seconds=300)
    issued = VaultDatabaseProvider().grant(ctx)
    with psycopg.connect(pg_target.admin_dsn) as conn:
        (valid_until,) = conn.execute(
            "SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s",
            [issued.credential["username"]],
        ).fetchone()
    lease = vault.client().sys.read_lease(issued.handle["lease_id"])["data"]
    lease_end = parse_datetime(lease["expire_time"])
    assert valid_until <= ctx.expires_at and lease_end <= ctx.expires_at
    assert issued.expires_at <= ctx.expires_at
    # What OpenBao adds fits the pad with a second to spare for the call itself...
    added = (valid_until - lease_end).total_seconds()
    assert 0 < added <= VALID_UNTIL_PAD - 1
    # ...and the grant loses no more than the pad.
    assert ctx.expires_at - lease_end <= timedelta(seconds=VALID_UNTIL_PAD + 1)
    VaultDatabaseProvider().revoke(issued.handle)


# README.md (`vault.database`) recommends these for the Vault role, so that revoking
# the lease also ends the sessions opened with the credential; the sandbox uses them.
ENDING_SESSIONS = DATABASE_REVOCATION


@pytest.fixture
def reader_revocation(vault):
    """Set the `reader` role's revocation statements for one test."""
    client = vault.client()
    yield lambda statements: set_reader_role(client, statements)
    set_reader_role(client)


@pytest.mark.parametrize("statements", [[], ENDING_SESSIONS], ids=["default", "readme"])
def test_what_revoking_the_lease_does_to_a_session_that_switched_roles(
    vault, pg_target, reader_revocation, statements
):
    reader_revocation(statements)
    provider = VaultDatabaseProvider()
    issued = provider.grant(context({"mount": "database", "role": "reader"}))
    c = issued.credential
    dsn = f"postgresql://{c['username']}:{c['password']}@127.0.0.1:{pg_target.port}/postgres"
    session = psycopg.connect(dsn, autocommit=True)
    session.execute("SET ROLE app_reader")

    provider.revoke(issued.handle)

    assert not can_login(dsn)
    if statements:
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
    else:
        # OpenBao's default drops the user but leaves its sessions: why the README
        # asks for revocation statements that end them.
        assert session.execute("SELECT count(*) FROM payments").fetchone() == (2,)
        session.close()


def test_the_readme_recommends_these_revocation_statements():
    section = Path("README.md").read_text().split("### Provider `vault.database`")[1]
    block = section.split("```json\n")[1].split("```")[0]
    assert json.loads("{" + block + "}")["revocation_statements"] == ENDING_SESSIONS


def reader_leases(vault) -> set[str]:
    try:
        listed = vault.client().sys.list_leases(prefix="database/creds/reader/")
    except vault_errors.InvalidPath:
        return set()
    return set(listed["data"]["keys"])


def test_a_grant_too_short_for_the_pad_is_refused_before_minting(vault):
    before = reader_leases(vault)
    with pytest.raises(ProviderError, match="too short") as caught:
        VaultDatabaseProvider().grant(
            context({"mount": "database", "role": "reader"}, seconds=VALID_UNTIL_PAD)
        )
    assert caught.value.permanent
    assert reader_leases(vault) <= before  # nothing minted


def test_unknown_role_is_permanent_and_an_outage_is_transient(vault, monkeypatch, settings):
    with pytest.raises(ProviderError) as caught:
        VaultDatabaseProvider().grant(context({"mount": "database", "role": "nope"}))
    assert caught.value.permanent
    settings.VAULT_ADDR = "http://127.0.0.1:1"
    with pytest.raises(ProviderError) as caught:
        VaultTokenProvider().grant(context({"policies": ["payments-read"]}))
    assert not caught.value.permanent and "cannot reach Vault" in str(caught.value)


def test_a_token_is_never_in_an_error_message(vault, monkeypatch):
    monkeypatch.setenv("VAULT_TOKEN", "s.not-a-real-token-but-secret")
    with pytest.raises(ProviderError) as caught:
        VaultTokenProvider().grant(context({"policies": ["payments-read"]}))
    assert "not-a-real-token" not in str(caught.value)
    assert caught.value.permanent


@pytest.fixture
def airlock_approle(vault, monkeypatch):
    """Airlock logs in to Vault with an AppRole instead of a token."""
    client = vault.client()
    if "approle/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method(method_type="approle")
    client.sys.create_or_update_policy(
        "airlock", 'path "auth/token/*" { capabilities = ["update", "sudo"] }'
    )
    client.auth.approle.create_or_update_approle(
        "airlock", token_policies=["airlock", "payments-read"], token_ttl="10m"
    )
    role_id = client.auth.approle.read_role_id("airlock")["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id("airlock")["data"]["secret_id"]
    monkeypatch.delenv("VAULT_TOKEN")
    monkeypatch.setenv("VAULT_ROLE_ID", role_id)
    monkeypatch.setenv("VAULT_SECRET_ID", secret_id)


def test_airlock_can_log_in_with_approle(vault, airlock_approle, monkeypatch):
    issued = VaultTokenProvider().grant(context({"policies": ["payments-read"]}))
    assert read_payments(vault, issued.credential["token"]) == {"api_key": "k-123"}

    monkeypatch.setenv("VAULT_SECRET_ID", "wrong")
    with pytest.raises(ProviderError) as caught:
        VaultTokenProvider().grant(context({"policies": ["payments-read"]}))
    assert caught.value.permanent and "wrong" not in str(caught.value)


def approle_logins(vault) -> int:
    """Live Vault tokens made by an AppRole login, counted at the source."""
    client = vault.client()
    accessors = client.auth.token.list_accessors()["data"]["keys"]
    paths = [client.auth.token.lookup_accessor(a)["data"]["path"] for a in accessors]
    return sum(path.startswith("auth/approle/login") for path in paths)


def test_one_approle_login_serves_call_after_call(vault, airlock_approle):
    before = approle_logins(vault)
    for _ in range(3):
        issued = VaultTokenProvider().grant(context({"policies": ["payments-read"]}))
        VaultTokenProvider().revoke(issued.handle)
    assert approle_logins(vault) == before + 1


def test_a_login_revoked_at_the_source_fails_once_then_airlock_logs_in_again(
    vault, airlock_approle
):
    provider = VaultTokenProvider()
    provider.revoke(provider.grant(context({"policies": ["payments-read"]})).handle)
    root = vault.client()
    for accessor in root.auth.token.list_accessors()["data"]["keys"]:
        if root.auth.token.lookup_accessor(accessor)["data"]["path"].startswith("auth/approle"):
            root.auth.token.revoke_accessor(accessor)

    with pytest.raises(ProviderError) as caught:
        provider.grant(context({"policies": ["payments-read"]}))
    assert not caught.value.permanent  # the task retries...
    issued = provider.grant(context({"policies": ["payments-read"]}))  # ...with a new login
    assert read_payments(vault, issued.credential["token"]) == {"api_key": "k-123"}
    provider.revoke(issued.handle)


def test_vault_errors_are_reported_without_their_header():
    from hvac import exceptions as vault_errors

    from integrations.vault.client import _message

    listed = vault_errors.InvalidRequest("1 error occurred:\n\t* invalid accessor\n\n")
    assert _message(listed) == "invalid accessor"
    assert _message(vault_errors.Forbidden(errors=["permission denied"])) == "permission denied"
    assert _message(vault_errors.VaultDown()) == "VaultDown"


def test_a_grant_ends_when_its_credential_does(people, submit, step_up, vault, pg_target):
    """OpenBao ends the database credential a pad before the grant: the grant's own
    end moves to the credential's, so it never shows active with a dead credential."""
    from audit.models import AuditEvent
    from tests.support.grants import active_grant

    grant = active_grant(people, submit, step_up, duration="10m", slug="vault-db")
    activated = AuditEvent.objects.get(action="grant.activated", target_id=str(grant.pk))
    assert grant.expires_at.isoformat() == activated.data["source_expires_at"]
    assert grant.expires_at < grant.activated_at + grant.duration


def test_a_token_that_may_list_but_not_look_up_tokens_sees_no_orphans_and_says_so(
    vault, monkeypatch
):
    """Reconciliation skips a token that vanished between the list and its lookup
    (Vault then answers "permission denied"); refused every lookup, it says so
    instead of reporting nothing live."""
    admin = vault.client()
    admin.sys.create_or_update_policy(
        "list-only", 'path "auth/token/accessors" { capabilities = ["list", "sudo"] }'
    )
    listing = admin.auth.token.create_orphan(policies=["list-only"], ttl="120s")["auth"]
    VaultTokenProvider().grant(context({"policies": ["payments-read"]}, seconds=60))
    monkeypatch.setenv("VAULT_TOKEN", listing["client_token"])
    with pytest.raises(ProviderError, match="refused every token lookup"):
        VaultTokenProvider().live_handles({"policies": ["payments-read"]})
