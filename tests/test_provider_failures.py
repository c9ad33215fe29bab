"""Transient provider errors retry with backoff; permanent ones fail visibly."""

import logging
from datetime import timedelta

import pytest
from django.db import DatabaseError

from audit import trail
from audit.models import AuditEvent
from broker import lifecycle
from broker.models import Grant
from lib.providers import get_provider
from tests.support.grants import active_grant, credential_dsn
from tests.support.people import WEB
from tests.support.pg_target import can_login, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
UNREACHABLE = "postgresql://postgres:x@127.0.0.1:1/postgres"


def approved(people, submit, step_up, slug="test-db") -> Grant:
    request = submit(people.alice, slug=slug)
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.id, approver=people.bob, info=WEB)
    return Grant.objects.get(request=request)


def test_a_transient_activation_error_is_recorded_then_gives_up(
    pg_target, people, submit, step_up, monkeypatch
):
    monkeypatch.setenv("AIRLOCK_PG_DSN_TEST", UNREACHABLE)
    grant = approved(people, submit, step_up)
    for attempt in range(1, lifecycle.ACTIVATION_MAX_ATTEMPTS):
        with pytest.raises(lifecycle.TryAgainLater, match="cannot connect"):
            lifecycle.grant_activate(grant_id=grant.id)
        grant.refresh_from_db()
        assert (grant.status, grant.activation_attempts) == ("scheduled", attempt)
        assert "cannot connect" in grant.last_error
    lifecycle.grant_activate(grant_id=grant.id)
    grant.refresh_from_db()
    assert grant.status == "failed" and "cannot connect" in grant.end_reason
    retries = AuditEvent.objects.filter(action="grant.activation_retry", target_id=str(grant.id))
    assert retries.count() == lifecycle.ACTIVATION_MAX_ATTEMPTS - 1
    assert AuditEvent.objects.filter(action="grant.failed", target_id=str(grant.id)).exists()


def test_the_worker_retries_until_the_source_is_back(
    pg_target, celery_worker, people, submit, step_up, monkeypatch
):
    monkeypatch.setenv("AIRLOCK_PG_DSN_TEST", UNREACHABLE)
    grant = approved(people, submit, step_up)
    assert wait_until(
        lambda: Grant.objects.get(pk=grant.pk).activation_attempts >= 1, timeout=10
    ), "the worker never tried"
    monkeypatch.setenv("AIRLOCK_PG_DSN_TEST", pg_target.admin_dsn)  # the outage ends
    assert wait_until(lambda: Grant.objects.get(pk=grant.pk).status == "active", timeout=30)
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=WEB)
    assert wait_until(lambda: Grant.objects.get(pk=grant.pk).status == "revoked")


def test_a_permanent_activation_error_fails_the_grant_at_once(pg_target, people, submit, step_up):
    grant = approved(people, submit, step_up, slug="broken-db")
    lifecycle.grant_activate(grant_id=grant.id)
    grant.refresh_from_db()
    assert grant.status == "failed"
    assert 'role "no_such_role" does not exist' in grant.end_reason
    assert grant.activation_attempts == 1 and grant.secret is None


def test_a_transient_revocation_error_is_retried_by_the_sweeper(
    pg_target, people, submit, step_up, monkeypatch, settings
):
    grant = active_grant(people, submit, step_up)
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=WEB)
    monkeypatch.setenv("AIRLOCK_PG_DSN_TEST", UNREACHABLE)
    with pytest.raises(lifecycle.TryAgainLater):
        lifecycle.grant_revoke_execute(grant_id=grant.id)
    grant.refresh_from_db()
    assert (grant.status, grant.revoke_attempts) == ("revoking", 1)

    monkeypatch.setenv("AIRLOCK_PG_DSN_TEST", pg_target.admin_dsn)
    settings.AIRLOCK_REVOKE_RETRY_AFTER = timedelta(0)
    assert lifecycle.sweep()["revocations_retried"] == 1
    grant.refresh_from_db()
    assert (grant.status, grant.revoke_attempts) == ("revoked", 2)
    assert not get_provider("postgres.role").check(grant.handle)


def test_revocation_that_keeps_failing_ends_revoke_failed_and_alerts(
    pg_target, people, submit, step_up, monkeypatch, settings, caplog
):
    settings.AIRLOCK_REVOKE_MAX_ATTEMPTS = 2
    grant = active_grant(people, submit, step_up)
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=WEB)
    monkeypatch.setenv("AIRLOCK_PG_DSN_TEST", UNREACHABLE)
    with pytest.raises(lifecycle.TryAgainLater):
        lifecycle.grant_revoke_execute(grant_id=grant.id)
    with caplog.at_level(logging.ERROR):
        lifecycle.grant_revoke_execute(grant_id=grant.id)
    grant.refresh_from_db()
    assert grant.status == "revoke_failed" and "cannot connect" in grant.last_error
    assert f"ALERT grant {grant.id} could not be revoked" in caplog.text
    assert AuditEvent.objects.filter(action="grant.revoke_failed").count() == 1
    assert grant.end_reason == "revoked by alice"  # why it ended stays apart from the error

    # The sweeper keeps trying, quietly, and finishes once the source is back.
    settings.AIRLOCK_REVOKE_RETRY_AFTER = timedelta(0)
    lifecycle.sweep()
    assert Grant.objects.get(pk=grant.pk).status == "revoke_failed"
    assert AuditEvent.objects.filter(action="grant.revoke_failed").count() == 1
    monkeypatch.setenv("AIRLOCK_PG_DSN_TEST", pg_target.admin_dsn)
    lifecycle.sweep()
    grant.refresh_from_db()
    assert grant.status == "revoked" and not get_provider("postgres.role").check(grant.handle)


@pytest.mark.parametrize("slug", ["vault-token", "vault-db"])
def test_vault_outages_retry_activation_and_revocation(
    pg_target, vault, people, submit, step_up, monkeypatch, settings, slug
):
    """OpenBao unreachable: activation retries then succeeds; revocation waits it out."""
    grant = approved(people, submit, step_up, slug=slug)
    settings.VAULT_ADDR = "http://127.0.0.1:1"
    with pytest.raises(lifecycle.TryAgainLater, match="cannot reach Vault"):
        lifecycle.grant_activate(grant_id=grant.id)
    settings.VAULT_ADDR = vault.address
    Grant.objects.filter(pk=grant.pk).update(last_attempt_at=None)
    lifecycle.grant_activate(grant_id=grant.id)
    grant.refresh_from_db()
    assert grant.status == "active" and grant.activation_attempts == 2

    settings.AIRLOCK_REVOKE_MAX_ATTEMPTS = 1
    settings.AIRLOCK_REVOKE_RETRY_AFTER = timedelta(0)
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=WEB)
    settings.VAULT_ADDR = "http://127.0.0.1:1"
    lifecycle.grant_revoke_execute(grant_id=grant.id)
    assert Grant.objects.get(pk=grant.pk).status == "revoke_failed"
    provider = get_provider(grant.profile.provider_kind)
    settings.VAULT_ADDR = vault.address
    assert provider.check(grant.handle)  # still live at the source: that is why it alerts
    lifecycle.sweep()
    grant.refresh_from_db()
    assert grant.status == "revoked" and not provider.check(grant.handle)


def test_a_credential_whose_grant_cannot_be_recorded_is_revoked_at_once(
    pg_target, people, submit, step_up, monkeypatch
):
    """The provider call succeeds, then the audit write fails: nothing may stay live."""
    grant = approved(people, submit, step_up)
    minted = []
    provider = get_provider("postgres.role")
    real_grant = provider.grant

    def grant_and_remember(context):
        issued = real_grant(context)
        minted.append(issued)
        return issued

    def failing_record(*, action, **kwargs):
        if action == "grant.activated":
            raise DatabaseError("audit storage unavailable")
        return real_record(action=action, **kwargs)

    real_record = trail.record
    monkeypatch.setattr(provider, "grant", grant_and_remember)
    monkeypatch.setattr(trail, "record", failing_record)
    with pytest.raises(DatabaseError):
        lifecycle.grant_activate(grant_id=grant.id)

    assert len(minted) == 1
    assert not provider.check(minted[0].handle)  # gone at the source
    assert not can_login(credential_dsn(minted[0].credential))
    grant.refresh_from_db()
    assert grant.status == "scheduled" and grant.secret is None  # nothing recorded


@pytest.mark.parametrize(
    "call",
    [
        lambda provider: provider.revoke({"dsn_env": "AIRLOCK_PG_DSN_TEST"}),  # no role in it
        lambda provider: provider.healthcheck({}),  # no dsn_env
        lambda provider: provider.live_handles({}),
    ],
)
def test_a_surprise_in_a_provider_is_a_transient_error_that_names_only_its_type(
    pg_target, caplog, call
):
    """Every caller (the lifecycle, health, reconciliation, check_catalog) gets the
    provider behind the guard, so a bug never escapes as a 500 or leaks its text."""
    from lib.providers import ProviderError, get_provider

    with pytest.raises(ProviderError) as caught:
        call(get_provider("postgres.role"))
    assert not caught.value.permanent
    assert str(caught.value) == "unexpected KeyError in the provider"
    assert "KeyError" in caplog.text  # the traceback is in the log, for an operator
