"""Extending a live grant: within the profile's rules, decided again unless the
policy approves it, and the credential re-issued with the old one revoked."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from broker import lifecycle
from broker.catalog.load import CatalogError, parse_catalog
from broker.models import AccessRequest, Grant
from lib.secrets import decrypt_secret
from tests.support.catalogs import TEST_CATALOG
from tests.support.grants import active_grant, credential_works, extend, half_way, reveal
from tests.support.people import WEB

pytestmark = pytest.mark.usefixtures("pg_target")


def test_an_approved_extension_reissues_the_credential_and_revokes_the_old(
    people, submit, step_up, pg_target, vault
):
    grant = active_grant(people, submit, step_up)
    old = reveal(grant, people.alice, step_up)
    half_way(grant)
    old_expiry = grant.expires_at
    extension = extend(grant, people.alice)
    assert extension.status == "pending" and extension.extends_id == grant.pk
    step_up(people.carol)
    lifecycle.access_request_approve(request_id=extension.pk, approver=people.carol, info=WEB)
    assert AuditEvent.objects.filter(action="grant.extension_scheduled").count() == 1
    assert not Grant.objects.filter(request=extension).exists()  # no second grant

    lifecycle.grant_extend_execute(request_id=extension.pk)
    grant.refresh_from_db()
    assert grant.expires_at == old_expiry + timedelta(minutes=30)
    assert grant.extensions == 1 and grant.duration == timedelta(minutes=40)
    assert grant.revealed_at is None and grant.secret is not None
    new = json.loads(decrypt_secret(grant.secret))
    assert new["user"] != old["user"]
    assert credential_works(new, pg_target, vault)
    assert not credential_works(old, pg_target, vault)
    event = AuditEvent.objects.get(action="grant.extended")
    assert event.data["request"] == str(extension.pk)
    # Applying it again changes nothing.
    assert lifecycle.grant_extend_execute(request_id=extension.pk) is None
    assert Grant.objects.get(pk=grant.pk).extensions == 1


def test_auto_approved_extension_of_a_vault_token(people, submit, step_up, vault, pg_target):
    grant = active_grant(people, submit, step_up, slug="vault-token")
    old = reveal(grant, people.alice, step_up)
    extension = extend(grant, people.alice, "1h")
    assert extension.status == "approved"
    approved = AuditEvent.objects.get(action="request.approved", target_id=str(extension.pk))
    assert approved.actor == "" and "extension.approval auto" in approved.data["by_policy"]
    lifecycle.grant_extend_execute(request_id=extension.pk)
    grant.refresh_from_db()
    new = json.loads(decrypt_secret(grant.secret))
    assert new["token"] != old["token"]
    assert credential_works(new, pg_target, vault)
    assert not credential_works(old, pg_target, vault)


@pytest.mark.parametrize(
    ("setup", "error", "message"),
    [
        ("too_early", lifecycle.Conflict, "can be asked from"),
        ("too_long", lifecycle.InvalidRequest, "the extension is not valid"),
        ("not_mine", lifecycle.NotFound, "no such grant"),
        ("no_reason", lifecycle.InvalidRequest, "the extension is not valid"),
    ],
)
def test_extension_rules(people, submit, step_up, setup, error, message):
    grant = active_grant(people, submit, step_up)
    if setup != "too_early":
        half_way(grant)
    kwargs = {
        "too_early": {},
        "too_long": {"duration": "3h"},
        "not_mine": {"user": people.bob},
        "no_reason": {"reason": " "},
    }[setup]
    user = kwargs.pop("user", people.alice)
    with pytest.raises(error, match=message):
        extend(grant, user, **kwargs)
    assert not AccessRequest.objects.filter(extends=grant).exists()


def test_one_at_a_time_and_at_most_max_count(people, submit, step_up):
    grant = active_grant(people, submit, step_up)
    half_way(grant)
    extend(grant, people.alice)
    with pytest.raises(lifecycle.Conflict, match="already under way"):
        extend(grant, people.alice)
    Grant.objects.filter(pk=grant.pk).update(extensions=2)
    AccessRequest.objects.filter(extends=grant).update(status="cancelled")
    with pytest.raises(lifecycle.Conflict, match="already extended 2 time"):
        extend(grant, people.alice)


def test_profiles_without_extension_refuse(people, submit, step_up):
    request = submit(people.alice, slug="other-db")
    step_up(people.erin)
    lifecycle.access_request_approve(request_id=request.pk, approver=people.erin, info=WEB)
    grant = Grant.objects.get(request=request)
    lifecycle.grant_activate(grant_id=grant.pk)
    with pytest.raises(lifecycle.NotAllowed, match="does not allow extensions"):
        extend(grant, people.alice)


def test_the_sweeper_applies_an_extension_whose_task_was_lost(people, submit, step_up):
    grant = active_grant(people, submit, step_up, slug="vault-token")
    extension = extend(grant, people.alice)
    AccessRequest.objects.filter(pk=extension.pk).update(
        decided_at=timezone.now() - timedelta(minutes=5)
    )
    assert lifecycle.sweep()["extensions_retried"] == 1
    assert Grant.objects.get(pk=grant.pk).extensions == 1
    assert lifecycle.sweep()["extensions_retried"] == 0


def test_the_api_and_the_web_ask_for_more_time(api, client, people, submit, step_up):
    grant = active_grant(people, submit, step_up)
    half_way(grant)
    response = api(people.alice).post(
        f"/api/v1/grants/{grant.pk}/extend/", {"duration": "20m", "reason": "x"}, format="json"
    )
    assert response.status_code == 201 and response.json()["extends"] == str(grant.pk)
    again = api(people.alice).post(
        f"/api/v1/grants/{grant.pk}/extend/", {"duration": "20m", "reason": "x"}, format="json"
    )
    assert again.status_code == 409
    AccessRequest.objects.filter(extends=grant).update(status="cancelled")
    client.force_login(people.alice)
    page = client.get(f"/grants/{grant.pk}/").content.decode()
    assert "Ask for more time" in page
    answer = client.post(f"/grants/{grant.pk}/extend/", {"duration": "15m", "reason": "y"})
    assert answer.status_code == 302
    assert AccessRequest.objects.filter(extends=grant, status="pending").count() == 1


@pytest.mark.parametrize(
    ("extension", "message"),
    [
        ("{max_total: 1h}", "leaves no room beyond max_duration"),
        ("{max_total: 3h, after_share: 1.5}", "after_share"),
        ("{max_total: 3h, approval: sometimes}", "approval"),
        ("{max_total: 9d}", "at most 7d"),
    ],
)
def test_catalog_errors_for_extension_rules(extension, message):
    text = TEST_CATALOG.replace(
        "extension: {max_count: 2, max_total: 3h, after_share: 0.5}", f"extension: {extension}"
    )
    with pytest.raises(CatalogError, match=message):
        parse_catalog(text.encode())
