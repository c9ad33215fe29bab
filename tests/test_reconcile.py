"""Reconciliation finds credentials made behind Airlock's back and revokes them."""

import logging
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from broker import lifecycle
from broker.models import AuditEvent
from broker.reconcile import find_orphans, report_orphans
from integrations.providers import GrantContext, get_provider
from tests.grants import active_grant, credential_works

pytestmark = pytest.mark.django_db(transaction=True)


def mint_behind_airlocks_back(slug: str, catalog) -> dict:
    """A credential made with Airlock's own provider code but no grant row."""
    spec = catalog[slug].policy.provider
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
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=lifecycle.audit.SYSTEM)
    lifecycle.grant_revoke_execute(grant_id=grant.id)


def test_the_periodic_check_alerts_and_records_but_changes_nothing(
    pg_target, vault, people, catalog, caplog
):
    orphan = mint_behind_airlocks_back("test-db", catalog)
    with caplog.at_level(logging.ERROR):
        findings = report_orphans()
    assert orphan["handle"] in [o.handle for o in findings.orphans]
    assert "ALERT" in caplog.text and "without a grant" in caplog.text
    assert AuditEvent.objects.filter(action="reconcile.orphans_found").exists()
    assert credential_works(orphan["credential"], pg_target, vault)
    get_provider("postgres.role").revoke(orphan["handle"])


def test_an_unreachable_source_is_reported(pg_target, vault, people, catalog, monkeypatch):
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:1")
    findings = find_orphans()
    assert any("vault-token" in problem for problem in findings.unreachable)
    with pytest.raises(CommandError, match="unchecked"):
        call_command("reconcile_grants")
