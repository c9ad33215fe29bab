"""A leaver, as the identity provider says so through SCIM: alice's live
credentials die at their sources (PostgreSQL, OpenBao, AWS) with a real worker,
her pending request is withdrawn, her API token, web session and Slack link
stop working. Leaving a group takes what came from it. The same whatever
disables the account (the admin, a shell)."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken
from audit.models import AuditEvent
from broker import lifecycle
from broker.models import AccessRequest, Grant
from integrations.slack.models import SlackIdentity
from tests.support.grants import active_grant, credential_works, reveal
from tests.support.pg_target import wait_until
from tests.test_grant_lifecycle_e2e import approved_and_active

TOKEN = "scim-test-token"  # nosec B105  # a test token
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def scim(monkeypatch):
    monkeypatch.setenv("AIRLOCK_SCIM_TOKEN", TOKEN)
    return Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def patch(scim, path: str, *operations: dict):
    body = {"schemas": [PATCH_OP], "Operations": list(operations)}
    response = scim.patch(path, body, content_type="application/scim+json")
    assert response.status_code == 200, response.content
    return response


def footholds(people, api, client):
    """alice's API token, web session and Slack link, each working now."""
    token = api(people.alice)
    assert token.get("/api/v1/me/").status_code == 200
    client.force_login(people.alice)
    assert client.get("/").status_code == 200
    SlackIdentity.objects.create(user=people.alice, team_id="T1", slack_user_id="U_ALICE",
                                 linked_at=timezone.now(), linked_by="email")  # fmt: skip
    return token


def assert_footholds_gone(people, token, client) -> None:
    assert token.get("/api/v1/me/").status_code == 401
    assert ApiToken.objects.filter(user=people.alice, revoked_at=None).count() == 0
    assert client.get("/").status_code == 302  # to the sign-in page
    assert not SlackIdentity.objects.filter(user=people.alice).exists()


@pytest.mark.slow
def test_a_leaver_loses_every_credential_at_its_source(
    scim, pg_target, vault, aws, celery_worker, people, submit, step_up, api, client
):
    held = [approved_and_active(people, submit, step_up, slug, "20m")
            for slug in ("test-db", "vault-token", "aws-reader")]  # fmt: skip
    for _, credential in held:
        assert credential_works(credential, pg_target, vault)
    pending = submit(people.alice, slug="test-db-critical", ticket="INC-8")
    token = footholds(people, api, client)

    patch(scim, f"/scim/v2/Users/{people.alice.pk}",
          {"op": "replace", "path": "active", "value": False})  # fmt: skip

    ids = [grant.pk for grant, _ in held]
    assert wait_until(lambda: Grant.objects.filter(pk__in=ids, status="revoked").count() == 3)
    for grant, credential in held:
        assert not credential_works(credential, pg_target, vault), grant.profile.slug
    assert AccessRequest.objects.get(pk=pending.pk).status == "cancelled"
    assert_footholds_gone(people, token, client)
    changed = AuditEvent.objects.get(action="data.account.changed")
    assert changed.source == "scim" and changed.data["fields"] == {"is_active": [True, False]}
    unlinked = AuditEvent.objects.get(action="slack.unlinked")
    assert (unlinked.actor, unlinked.reason) == ("", "account disabled")


def test_a_delete_from_the_idp_disables_and_hides_the_account(
    scim, pg_target, people, submit, step_up, django_capture_on_commit_callbacks
):
    grant = active_grant(people, submit, step_up)
    with django_capture_on_commit_callbacks(execute=True):
        assert scim.delete(f"/scim/v2/Users/{people.alice.pk}").status_code == 204
    people.alice.refresh_from_db()
    assert not people.alice.is_active
    assert Grant.objects.get(pk=grant.pk).status == "revoking"
    assert scim.get(f"/scim/v2/Users/{people.alice.pk}").status_code == 404


def test_leaving_a_group_at_the_idp_takes_what_came_from_it(
    scim, pg_target, people, submit, step_up, django_capture_on_commit_callbacks
):
    grant = active_grant(people, submit, step_up)
    credential = reveal(grant, people.alice, step_up)
    engineers = Group.objects.get(name="engineers")
    with django_capture_on_commit_callbacks(execute=True):
        patch(scim, f"/scim/v2/Groups/{engineers.pk}",
              {"op": "remove", "path": f'members[value eq "{people.alice.pk}"]'})  # fmt: skip
    grant.refresh_from_db()
    assert grant.status == "revoking" and "alice may no longer request test-db" in grant.end_reason
    lifecycle.grant_revoke_execute(grant_id=grant.pk)
    assert not credential_works(credential, pg_target, None)
    assert people.alice.is_active  # she is still here, only not an engineer


def test_the_admin_disabling_an_account_ends_its_footholds_too(people, catalog, api, client):
    token = footholds(people, api, client)
    people.alice.is_active = False
    people.alice.save()
    assert_footholds_gone(people, token, client)
    revoked = AuditEvent.objects.get(action="api_token.revoked")
    assert revoked.reason == "account disabled"
