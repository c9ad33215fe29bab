"""Reconciliation finds credentials made behind Airlock's back and revokes them."""

import logging
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit import trail
from audit.models import AuditEvent
from broker import lifecycle
from broker.models import OrphanSighting
from broker.reconcile import find_orphans, reconcile_orphans
from lib.providers import GrantContext, get_provider
from tests.support.grants import active_grant, credential_works

pytestmark = pytest.mark.django_db(transaction=True)


def mint_behind_airlocks_back(slug: str, catalog) -> dict:
    """A credential made with Airlock's own provider code but no grant row."""
    spec = catalog[slug].definition.provider
    issued = get_provider(spec.kind).grant(
        GrantContext(
            grant_id=str(uuid.uuid4()),
            request_id=str(uuid.uuid4()),
            profile_id=slug,
            username="mallory",
            config=spec.config,
            expires_at=timezone.now() + timedelta(minutes=10),
        )
    )
    return {"handle": issued.handle, "credential": issued.credential}


@pytest.mark.parametrize("slug", ["test-db", "vault-token", "vault-db"])
def test_an_orphan_is_reported_then_fixed(pg_target, vault, people, catalog, capsys, slug):
    orphan = mint_behind_airlocks_back(slug, catalog)
    assert orphan["handle"] in [o.handle for o in find_orphans().orphans]

    with pytest.raises(CommandError, match="orphan"):
        call_command("reconcile_grants")
    assert "orphan: " in capsys.readouterr().out

    call_command("reconcile_grants", "--fix")
    assert "revoked: " in capsys.readouterr().out
    assert not credential_works(orphan["credential"], pg_target, vault)
    assert AuditEvent.objects.filter(
        action="reconcile.orphan_revoked", data__handle=orphan["handle"]
    ).exists()
    call_command("reconcile_grants")  # clean now: exits 0
    assert "no orphans" in capsys.readouterr().out


def test_an_active_grant_is_not_an_orphan(pg_target, vault, people, submit, step_up):
    grant = active_grant(people, submit, step_up)
    assert grant.handle not in [o.handle for o in find_orphans().orphans]
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=trail.SYSTEM)
    lifecycle.grant_revoke_execute(grant_id=grant.id)


@pytest.mark.parametrize("slug", ["test-db", "vault-token", "vault-db"])
def test_the_periodic_check_alerts_first_and_revokes_what_stays_unexplained(
    pg_target, vault, people, catalog, caplog, settings, slug
):
    settings.AIRLOCK_RECONCILE_REVOKE_AFTER = timedelta(minutes=5)
    orphan = mint_behind_airlocks_back(slug, catalog)
    with caplog.at_level(logging.ERROR):
        findings = reconcile_orphans()
    assert orphan["handle"] in [o.handle for o in findings.orphans]
    assert "ALERT" in caplog.text and "without a grant" in caplog.text
    assert AuditEvent.objects.filter(action="reconcile.orphans_found").exists()
    # Seen once: it may be an activation about to record it, so it is left alone.
    assert credential_works(orphan["credential"], pg_target, vault)
    reconcile_orphans()
    assert credential_works(orphan["credential"], pg_target, vault)

    OrphanSighting.objects.update(first_seen=timezone.now() - timedelta(minutes=6))
    findings = reconcile_orphans()
    assert orphan["handle"] not in [o.handle for o in findings.orphans]
    assert not credential_works(orphan["credential"], pg_target, vault)
    # Credentials other tests left on the shared target may be revoked beside it.
    revoked = AuditEvent.objects.get(
        action="reconcile.orphan_revoked", data__handle=orphan["handle"]
    )
    assert revoked.source == "system"
    assert not OrphanSighting.objects.exists()


def test_with_no_grace_set_the_periodic_check_only_reports(
    pg_target, vault, people, catalog, settings
):
    settings.AIRLOCK_RECONCILE_REVOKE_AFTER = timedelta(0)
    orphan = mint_behind_airlocks_back("test-db", catalog)
    reconcile_orphans()
    OrphanSighting.objects.update(first_seen=timezone.now() - timedelta(days=1))
    assert orphan["handle"] in [o.handle for o in reconcile_orphans().orphans]
    assert credential_works(orphan["credential"], pg_target, vault)
    get_provider("postgres.role").revoke(orphan["handle"])


def test_a_sighting_is_forgotten_once_a_grant_explains_it(
    pg_target, vault, people, submit, step_up, settings
):
    """A sighting made while an activation was about to record its credential."""
    settings.AIRLOCK_RECONCILE_REVOKE_AFTER = timedelta(minutes=5)
    grant = active_grant(people, submit, step_up)
    OrphanSighting.objects.create(
        key="0" * 64, kind="postgres.role", profile="test-db", handle=grant.handle,
        first_seen=timezone.now() - timedelta(hours=1),
    )  # fmt: skip
    assert grant.handle not in [o.handle for o in reconcile_orphans().orphans]
    assert not OrphanSighting.objects.exists()
    assert get_provider("postgres.role").check(grant.handle)
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=trail.SYSTEM)
    lifecycle.grant_revoke_execute(grant_id=grant.id)


def test_an_unreachable_source_is_reported(
    pg_target, vault, people, catalog, monkeypatch, settings
):
    settings.VAULT_ADDR = "http://127.0.0.1:1"
    findings = find_orphans()
    assert any("vault-token" in problem for problem in findings.unreachable)
    with pytest.raises(CommandError, match="unchecked"):
        call_command("reconcile_grants")
