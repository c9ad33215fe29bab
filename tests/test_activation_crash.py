"""A worker dying, or losing its database, between minting a credential and
recording it: nothing stays live that no grant explains."""

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta

import psycopg
import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from broker import lifecycle
from broker.models import Grant, OrphanSighting
from broker.reconcile import find_orphans, reconcile_orphans
from lib.providers import get_provider
from tests.support.chaos import airlock_database_url
from tests.support.people import WEB
from tests.support.pg_target import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

# Runs in a process of its own: the real activation, killed with SIGKILL the
# moment the provider returns, before anything is committed.
DIE_AFTER_MINTING = """
import json, os, signal, sys
import django
django.setup()
from broker import lifecycle
from lib.providers import get_provider
provider = get_provider(sys.argv[1])
mint = provider.grant
def mint_then_die(context):
    issued = mint(context)
    print(json.dumps(issued.handle), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
provider.grant = mint_then_die
lifecycle.grant_activate(grant_id=sys.argv[2])
"""


def approved_grant(people, submit, step_up, slug: str) -> Grant:
    request = submit(people.alice, slug=slug)
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.id, approver=people.bob, info=WEB)
    return Grant.objects.get(request=request)


@pytest.mark.parametrize("slug", ["test-db", "vault-token", "vault-db"])
def test_a_worker_killed_between_minting_and_recording_leaves_nothing_live(
    pg_target, vault, people, submit, step_up, settings, slug
):
    grant = approved_grant(people, submit, step_up, slug)
    provider = get_provider(grant.profile.provider_kind)
    died = subprocess.run(
        [sys.executable, "-c", DIE_AFTER_MINTING, provider.kind, str(grant.id)],
        env={**os.environ, "DATABASE_URL": airlock_database_url()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert died.returncode == -signal.SIGKILL, died.stderr
    minted = json.loads(died.stdout)
    grant.refresh_from_db()
    assert (grant.status, grant.handle, grant.secret) == ("scheduled", {}, None)
    assert provider.check(minted)  # live at the source, recorded nowhere

    # The retry (the sweeper, or the task redelivered) activates the grant.
    lifecycle.grant_activate(grant_id=grant.id)
    grant.refresh_from_db()
    assert grant.status == "active"

    # The periodic reconciler leaves a first sighting alone, then revokes it.
    settings.AIRLOCK_RECONCILE_REVOKE_AFTER = timedelta(minutes=5)
    reconcile_orphans()
    OrphanSighting.objects.update(first_seen=timezone.now() - timedelta(minutes=6))
    reconcile_orphans()
    if minted == grant.handle:
        # PostgreSQL roles are named after the grant: the retry took it over.
        assert provider.check(minted)
    else:
        assert not provider.check(minted)
    assert provider.check(grant.handle)  # the recorded credential is untouched
    assert find_orphans().orphans == []

    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=WEB)
    lifecycle.grant_revoke_execute(grant_id=grant.id)
    assert not provider.check(grant.handle)


@pytest.mark.parametrize("slug", ["test-db", "vault-token", "vault-db"])
def test_a_database_lost_mid_activation_revokes_what_was_minted(
    pg_target, vault, people, submit, step_up, monkeypatch, slug
):
    """What a restart of Airlock's database does to a worker: its connection is
    cut after the provider call, so nothing can be recorded."""
    grant = approved_grant(people, submit, step_up, slug)
    provider = get_provider(grant.profile.provider_kind)
    mint, minted = provider.grant, []

    def mint_then_lose_the_database(context):
        issued = mint(context)
        minted.append(issued.handle)
        backend = connection.connection.info.backend_pid
        with psycopg.connect(airlock_database_url(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [backend])
        return issued

    monkeypatch.setattr(provider, "grant", mint_then_lose_the_database)
    with pytest.raises(OperationalError):
        lifecycle.grant_activate(grant_id=grant.id)
    assert not provider.check(minted[0])  # revoked at once, not left to the reconciler

    connection.close()  # what Django does with a broken connection at the next request
    grant.refresh_from_db()
    assert (grant.status, grant.handle, grant.secret) == ("scheduled", {}, None)
    monkeypatch.setattr(provider, "grant", mint)
    lifecycle.grant_activate(grant_id=grant.id)
    grant.refresh_from_db()
    assert grant.status == "active" and provider.check(grant.handle)
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=WEB)
    lifecycle.grant_revoke_execute(grant_id=grant.id)


def test_the_activation_task_retries_at_once_after_losing_its_database(
    pg_target, celery_worker, people, submit, step_up, monkeypatch
):
    """The task itself backs off and retries (no beat runs here, so no sweeper)."""
    provider = get_provider("postgres.role")
    mint, attempts = provider.grant, []

    def lose_the_database_once(context):
        issued = mint(context)
        attempts.append(issued.handle)
        if len(attempts) == 1:
            with psycopg.connect(airlock_database_url(), autocommit=True) as admin:
                backend = connection.connection.info.backend_pid  # the worker thread's
                admin.execute("SELECT pg_terminate_backend(%s)", [backend])
        return issued

    monkeypatch.setattr(provider, "grant", lose_the_database_once)
    grant = approved_grant(people, submit, step_up, "test-db")
    assert wait_until(lambda: Grant.objects.get(pk=grant.pk).status == "active", timeout=15)
    assert len(attempts) == 2
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=WEB)
    assert wait_until(lambda: Grant.objects.get(pk=grant.pk).status == "revoked")
