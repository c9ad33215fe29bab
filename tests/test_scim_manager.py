"""A person's line manager from the identity provider: SCIM's enterprise extension,
as Okta (an object, or a value without a path) and Entra ID (a bare id at the
attribute's path) send it. Only an account SCIM manages, other than the person,
becomes a manager; a malformed value is a 400 that changes nothing; each change
is an audit event."""

import pytest

from accounts.models import ScimAccount
from audit.models import AuditEvent
from tests.support.scim import ENTERPRISE, PATCH_OP, send
from tests.support.scim import USER as CORE

pytestmark = pytest.mark.usefixtures("in_test_transaction")


def patch(scim, user, *operations):
    body = {"schemas": [PATCH_OP], "Operations": list(operations)}
    return send(scim, "patch", f"/scim/v2/Users/{user.pk}", body)


def manager_of(user):
    return ScimAccount.objects.filter(user=user).values_list("manager__username", flat=True).first()


def test_a_joiner_arrives_with_their_manager_and_shows_it(scim, people):
    response = send(scim, "post", "/scim/v2/Users", {
        "schemas": [CORE, ENTERPRISE], "userName": "frank", "active": True,
        ENTERPRISE: {"department": "Payments", "manager": {"value": str(people.bob.pk)}},
    })  # fmt: skip
    assert response.status_code == 201, response.content
    shown = response.json()
    assert ENTERPRISE in shown["schemas"]
    assert shown[ENTERPRISE]["manager"]["value"] == str(people.bob.pk)
    assert shown[ENTERPRISE]["manager"]["$ref"].endswith(f"/scim/v2/Users/{people.bob.pk}")
    frank = ScimAccount.objects.get(user__username="frank").user
    assert manager_of(frank) == "bob"
    events = AuditEvent.objects.filter(action__startswith="data.scim_account", source="scim")
    assert events.last().data["fields"]["manager_id"][-1] == people.bob.pk


def test_a_change_of_manager_is_an_audit_event(scim, people):
    entra = {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": str(people.bob.pk)}
    patch(scim, people.alice, entra)
    changed = AuditEvent.objects.filter(action="data.scim_account.changed", source="scim").last()
    assert changed.data == {"fields": {"manager_id": [None, people.bob.pk]}}


def test_enterprise_attributes_without_a_manager_are_accepted(scim, people):
    response = send(scim, "post", "/scim/v2/Users", {
        "schemas": [CORE, ENTERPRISE], "userName": "grace",
        ENTERPRISE: {"employeeNumber": "701", "costCenter": "4130"},
    })  # fmt: skip
    assert response.status_code == 201, response.content
    assert ENTERPRISE not in response.json()  # no manager: nothing to say


def test_entra_and_okta_patches_set_and_remove_the_manager(scim, people):
    alice, bob, carol = people.alice, people.bob, people.carol
    entra = {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": str(bob.pk)}
    assert patch(scim, alice, entra).status_code == 200
    assert manager_of(alice) == "bob"
    okta = {"op": "replace", "value": {ENTERPRISE: {"manager": {"value": str(carol.pk)}}}}
    assert patch(scim, alice, okta).status_code == 200
    assert manager_of(alice) == "carol"
    by_value = {"op": "add", "path": f"{ENTERPRISE}:manager.value", "value": str(bob.pk)}
    assert patch(scim, alice, by_value).status_code == 200
    assert manager_of(alice) == "bob"
    removed = {"op": "remove", "path": f"{ENTERPRISE}:manager"}
    assert patch(scim, alice, removed).status_code == 200
    assert manager_of(alice) is None


def test_entras_leaver_patch_with_a_manager_still_disables(scim, people):
    response = patch(
        scim, people.alice,
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": str(people.bob.pk)},
    )  # fmt: skip
    assert response.status_code == 200
    people.alice.refresh_from_db()
    assert not people.alice.is_active and manager_of(people.alice) == "bob"


def test_a_put_that_leaves_the_manager_out_keeps_it(scim, people):
    patch(scim, people.alice, {"op": "replace", "path": f"{ENTERPRISE}:manager",
                               "value": str(people.bob.pk)})  # fmt: skip
    response = send(scim, "put", f"/scim/v2/Users/{people.alice.pk}", {
        "schemas": [CORE], "userName": "alice", "active": True,
    })  # fmt: skip
    assert response.status_code == 200
    assert manager_of(people.alice) == "bob"


@pytest.mark.parametrize("who", ["self", "admin", "nobody"])
def test_only_an_account_scim_manages_other_than_the_person_is_a_manager(scim, people, who):
    """Oneself, a staff account (SCIM never sees it) or an id nobody has: the
    person gets no manager, not a 400 (an IdP that pushes a report before their
    manager must not have the report refused)."""
    patch(scim, people.alice, {"op": "replace", "path": f"{ENTERPRISE}:manager",
                               "value": str(people.bob.pk)})  # fmt: skip
    named = {"self": people.alice.pk, "admin": people.admin.pk, "nobody": 987654}[who]
    response = patch(
        scim, people.alice, {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": str(named)}
    )
    assert response.status_code == 200
    assert manager_of(people.alice) is None


@pytest.mark.parametrize("value", ["bob", "1.5", True, ["3"], {"value": {"id": 3}}])
def test_a_malformed_manager_is_a_clear_error_that_changes_nothing(scim, people, value):
    patch(scim, people.alice, {"op": "replace", "path": f"{ENTERPRISE}:manager",
                               "value": str(people.bob.pk)})  # fmt: skip
    response = patch(
        scim, people.alice,
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": value},
    )  # fmt: skip
    assert response.status_code == 400
    assert "manager" in response.json()["detail"]
    people.alice.refresh_from_db()
    assert people.alice.is_active and manager_of(people.alice) == "bob"


def test_discovery_declares_the_enterprise_extension(scim):
    types = scim.get("/scim/v2/ResourceTypes").json()["Resources"]
    user_type = next(t for t in types if t["id"] == "User")
    assert user_type["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    schemas = {s["id"] for s in scim.get("/scim/v2/Schemas").json()["Resources"]}
    assert ENTERPRISE in schemas
