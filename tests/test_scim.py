"""SCIM 2.0 as an identity provider calls it, through a third-party client
(scim2-client, which checks every answer against the SCIM schemas): discovery,
users and groups created, found by filter, replaced, patched and deleted;
malformed payloads get SCIM-shaped 4xx errors and change nothing; staff
accounts are not the IdP's; no token, no SCIM."""

import pytest
from django.contrib.auth.models import Group
from django.core.handlers.wsgi import WSGIHandler
from django.test import Client
from scim2_client.engines.wsgi import WSGISCIMClient
from scim2_models import (
    Email,
    GroupMember,
    PatchOp,
    PatchOperation,
    ScimProvider,
)
from scim2_models import Group as ScimGroup
from scim2_models import User as ScimUser
from scim2_models.exceptions import NotFoundException

from audit.models import AuditEvent

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
TOKEN = "scim-test-token"  # nosec B105  # a test token
pytestmark = pytest.mark.usefixtures("in_test_transaction")


@pytest.fixture
def idp(monkeypatch, people):
    monkeypatch.setenv("AIRLOCK_SCIM_TOKEN", TOKEN)
    client = WSGISCIMClient(
        WSGIHandler(),
        base_url="http://testserver/scim/v2",
        headers={"Authorization": f"Bearer {TOKEN}"},
        provider=ScimProvider(models=[ScimUser, ScimGroup]),
    )
    client.discover()
    return client


def raw(method: str, path: str, body=None, token: str = TOKEN):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    kwargs = {"content_type": "application/scim+json"} if body is not None else {}
    return (
        getattr(client, method)(path, body, **kwargs)
        if body is not None
        else getattr(client, method)(path)
    )


def test_the_idp_discovers_the_service(idp):
    config = idp.provider.config
    assert config.patch.supported and config.filter.supported and not config.bulk.supported
    assert {rt.endpoint for rt in idp.provider.resource_types} == {"/Users", "/Groups"}


def test_a_joiner_is_created_found_changed_and_deleted(idp, people):
    email = Email(value="zoe@example.com", primary=True)
    zoe = idp.create(ScimUser(user_name="zoe", emails=[email], active=True, external_id="00u1"))
    assert zoe.id and zoe.user_name == "zoe" and zoe.active
    account = people.alice.__class__.objects.get(username="zoe")
    assert not account.has_usable_password() and account.scim.external_id == "00u1"

    found = idp.query(ScimUser, query_parameters={"filter": 'userName eq "zoe"'})
    assert [user.id for user in found.resources] == [zoe.id]
    by_external = idp.query(ScimUser, query_parameters={"filter": 'externalId eq "00u1"'})
    assert by_external.total_results == 1

    zoe.emails = [Email(value="zoe.new@example.com", primary=True)]
    replaced = idp.replace(zoe)
    assert replaced.emails[0].value == "zoe.new@example.com"

    patch = PatchOp[ScimUser](operations=[PatchOperation[ScimUser](op="replace", path="active",
                                                                   value=False)])  # fmt: skip
    patched = idp.modify(ScimUser, zoe.id, patch)
    assert patched.active is False

    idp.delete(ScimUser, zoe.id)
    with pytest.raises(NotFoundException):
        idp.query(ScimUser, zoe.id)
    account.refresh_from_db()
    assert not account.is_active and account.scim.deleted_at is not None
    events = AuditEvent.objects.filter(source="scim").values_list("action", flat=True)
    assert {"data.account.created", "data.account.changed"} <= set(events)


def test_groups_carry_their_members(idp, people):
    members = [GroupMember(value=str(people.alice.pk)), GroupMember(value=str(people.bob.pk))]
    group = idp.create(ScimGroup(display_name="payments-oncall", members=members))
    assert sorted(m.display for m in group.members) == ["alice", "bob"]
    patch = PatchOp[ScimGroup](operations=[PatchOperation[ScimGroup](
        op="remove", path=f'members[value eq "{people.bob.pk}"]')])  # fmt: skip
    changed = idp.modify(ScimGroup, group.id, patch)
    assert [m.display for m in changed.members] == ["alice"]
    assert list(Group.objects.get(name="payments-oncall").user_set.all()) == [people.alice]
    found = idp.query(ScimGroup, query_parameters={"filter": 'displayName eq "payments-oncall"'})
    assert found.total_results == 1
    idp.delete(ScimGroup, group.id)
    assert not Group.objects.filter(name="payments-oncall").exists()


def test_staff_accounts_are_not_the_idps(idp, people):
    listed = idp.query(ScimUser)
    assert "admin" not in {user.user_name for user in listed.resources}
    assert raw("get", f"/scim/v2/Users/{people.admin.pk}").status_code == 404
    taken = raw("post", "/scim/v2/Users", {"schemas": [ScimUser.__schema__], "userName": "admin"})
    assert taken.status_code == 409 and taken.json()["scimType"] == "uniqueness"
    group = Group.objects.create(name="ops")
    group.user_set.add(people.admin)
    body = {"schemas": [ScimGroup.__schema__], "displayName": "ops",
            "members": [{"value": str(people.alice.pk)}]}  # fmt: skip
    assert raw("put", f"/scim/v2/Groups/{group.pk}", body).status_code == 200
    assert set(group.user_set.all()) == {people.admin, people.alice}  # the admin stays
    staff = {**body, "members": [{"value": str(people.admin.pk)}]}
    assert raw("put", f"/scim/v2/Groups/{group.pk}", staff).status_code == 400


@pytest.mark.parametrize(
    "method, path, body, status, scim_type",
    [
        ("post", "/scim/v2/Users", "{nope", 400, "invalidSyntax"),
        ("post", "/scim/v2/Users", [], 400, "invalidSyntax"),
        ("post", "/scim/v2/Users", {"schemas": [str(ScimUser.__schema__)]}, 400, "invalidValue"),
        ("post", "/scim/v2/Users", {"schemas": [str(ScimUser.__schema__)], "userName": "a b/c"},
         400, "invalidValue"),
        ("post", "/scim/v2/Users", {"schemas": [str(ScimUser.__schema__)], "userName": "alice"},
         409, "uniqueness"),
        ("patch", "/scim/v2/Users/ALICE", {"schemas": [], "Operations": []}, 400,
         "invalidValue"),
        ("patch", "/scim/v2/Users/ALICE", {"schemas": [PATCH_OP],
         "Operations": [{"op": "replace", "path": "nosuch", "value": 1}]}, 400, "invalidValue"),
        ("get", "/scim/v2/Users?filter=userName sw \"a\"", None, 400, "invalidFilter"),
        ("get", "/scim/v2/Users?startIndex=x", None, 400, "invalidValue"),
        ("get", "/scim/v2/Users/999999", None, 404, None),
        ("get", "/scim/v2/Users/../Groups", None, 404, None),
        ("get", "/scim/v2/Bulk", None, 404, None),
        ("post", "/scim/v2/Groups", {"schemas": [str(ScimGroup.__schema__)],
         "displayName": "x", "members": [{"value": "999999"}]}, 400, "invalidValue"),
    ],
)  # fmt: skip
def test_malformed_requests_get_scim_errors_and_change_nothing(
    idp, people, method, path, body, status, scim_type
):
    before = AuditEvent.objects.count()
    response = raw(method, path.replace("ALICE", str(people.alice.pk)), body)
    assert response.status_code == status, response.content
    error = response.json()
    assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert error["status"] == str(status) and error.get("scimType") == scim_type
    assert AuditEvent.objects.count() == before
    assert response["Content-Type"] == "application/scim+json"


@pytest.mark.parametrize("token", ["", "wrong", TOKEN + "x"])
def test_without_the_token_nothing(monkeypatch, people, token):
    monkeypatch.setenv("AIRLOCK_SCIM_TOKEN", TOKEN)
    response = raw("get", "/scim/v2/Users", token=token)
    assert response.status_code == 401 and response.json()["status"] == "401"


def test_scim_is_off_without_a_token_configured(monkeypatch, people):
    monkeypatch.delenv("AIRLOCK_SCIM_TOKEN", raising=False)
    assert raw("get", "/scim/v2/Users").status_code == 404
