"""SCIM from a careless or hostile identity provider (found by an attack review,
each a test): Entra ID's one-PATCH leaver with attributes Airlock does not keep;
a recycled userName; groups that give staff their roles; input that once made
500s; a PUT that leaves `active` out."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.models import Authenticator
from broker.policy.locks import is_security
from tests.support.people import phone_of
from tests.support.scim import GROUP, PATCH_OP, USER, send

pytestmark = pytest.mark.usefixtures("in_test_transaction")


def test_an_entra_leaver_patch_disables_the_account(scim, people):
    """Entra ID's default mapping writes emails[type eq "work"].value (and
    addresses[type eq "work"].*, phoneNumbers[type eq "work"].value) and sends every
    changed attribute in one PATCH. Airlock never emits `type` on emails, so the
    filter matches nothing; scim2-models raises NoTargetException, which is not the
    ValueError _apply catches: 500, and the leaver stays active (Entra retries, then
    quarantines the whole provisioning job)."""
    response = send(scim, "patch", f"/scim/v2/Users/{people.alice.pk}", {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": 'emails[type eq "work"].value',
             "value": "alice@example.com"},
        ],
    })  # fmt: skip
    assert response.status_code == 200, response.status_code
    people.alice.refresh_from_db()
    assert not people.alice.is_active


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("get", '/scim/v2/Users?filter=userName eq "a\\x"', None),          # JSONDecodeError
        ("get", '/scim/v2/Users?filter=userName eq "a\\u0000"', None),      # NUL to PostgreSQL
        ("get", '/scim/v2/Users?filter=userName eq "\\ud800"', None),       # lone surrogate
        ("get", "/scim/v2/Users?startIndex=100000000000000000000", None),   # bigint OFFSET
        ("get", "/scim/v2/Users/\u00b2", None),                             # "²".isdigit()
        ("get", "/scim/v2/Groups/\u00b2", None),
        ("post", "/scim/v2/Groups", {"schemas": [GROUP], "displayName": "g",
                                     "members": [{"value": "\u00b2"}]}),
        ("post", "/scim/v2/Groups", {"schemas": [GROUP], "displayName": "g\u0000"}),
        ("post", "/scim/v2/Users", {"schemas": [USER], "userName": "n1",
                                    "name": {"givenName": "a\u0000"}}),
        ("post", "/scim/v2/Users", {"schemas": [USER], "userName": "n2", "externalId": "a\u0000"}),
        ("patch", "/scim/v2/Users/ALICE", {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "name", "value": "not an object"}]}),
        ("patch", "/scim/v2/Users/ALICE", {"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": 'addresses[type eq "work"].country', "value": "FR"}]}),
    ],
)  # fmt: skip
def test_no_input_from_the_idp_makes_a_500(scim, people, method, path, body):
    response = send(scim, method, path.replace("ALICE", str(people.alice.pk)), body)
    assert response.status_code < 500, response.status_code
    assert response["Content-Type"] == "application/scim+json"


def test_scim_does_not_change_staff_standing_through_a_group_rename(scim, people, catalog):
    """README: staff "are not the IdP's: SCIM ... cannot change them, and a group's
    staff members stay". Yet SCIM may rename any group, staff inside: renaming the
    catalog's `security` group strips a staff member of the security role."""
    lead = get_user_model().objects.create_user("sec-lead", "lead@example.com", "x",
                                                is_staff=True)  # fmt: skip
    security = Group.objects.get(name="security")
    security.user_set.add(lead)
    assert is_security(lead)
    response = send(scim, "patch", f"/scim/v2/Groups/{security.pk}", {
        "schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "displayName", "value": "security-old"}]})  # fmt: skip
    assert response.status_code != 200 or is_security(lead), "staff lost the security role"


def test_scim_delete_of_a_group_keeps_its_staff_members(scim, people, catalog):
    lead = get_user_model().objects.create_user("sec-lead", "lead@example.com", "x",
                                                is_staff=True)  # fmt: skip
    security = Group.objects.get(name="security")
    security.user_set.add(lead)
    response = send(scim, "delete", f"/scim/v2/Groups/{security.pk}")
    assert response.status_code != 204 or is_security(lead), "staff lost the security role"


def test_a_recycled_username_does_not_revive_someone_elses_account(scim, people):
    """DELETE alice (IdP id 00u-ALICE); later the IdP creates a *different* person
    (00u-NEWHIRE) with userName alice: Airlock revives the old account as is -
    same pk, old groups (standing to request and approve), the old MFA device,
    the old OIDC binding - without comparing externalId."""
    alice = people.alice
    first = send(scim, "put", f"/scim/v2/Users/{alice.pk}",
                 {"schemas": [USER], "userName": "alice", "externalId": "00u-ALICE",
                  "active": True})  # fmt: skip
    assert first.status_code == 200
    alice.groups.add(Group.objects.get_or_create(name="security")[0])
    phone_of(alice)  # her enrolled authenticator
    assert send(scim, "delete", f"/scim/v2/Users/{alice.pk}").status_code == 204

    created = send(scim, "post", "/scim/v2/Users",
                   {"schemas": [USER], "userName": "alice", "externalId": "00u-NEWHIRE",
                    "active": True})  # fmt: skip
    if created.status_code == 409:
        return  # refused: fine
    account = get_user_model().objects.get(pk=created.json()["id"])
    assert account.pk != alice.pk or not (
        account.groups.exists() or Authenticator.objects.filter(user=account).exists()
    ), "the new hire inherited the leaver's groups and MFA device"


def test_a_put_without_active_does_not_re_enable_a_disabled_account(scim, people):
    """RFC 7643 gives `active` no default; _user_fields reads a missing one as
    True, so any PUT that omits it re-enables an account the admin disabled."""
    people.alice.is_active = False
    people.alice.save()
    response = send(scim, "put", f"/scim/v2/Users/{people.alice.pk}",
                    {"schemas": [USER], "userName": "alice"})  # fmt: skip
    assert response.status_code == 200
    people.alice.refresh_from_db()
    assert not people.alice.is_active


def test_third_parties_are_not_the_idps(scim, people, catalog, step_up):
    """Their sponsor's, not the staff identity provider's: SCIM neither sees nor
    re-enables one the admin disabled, nor makes one a member or a manager."""
    from tests.support.externals import invite_zoe, open_test_db_to_externals

    open_test_db_to_externals()
    zoe = invite_zoe(people, step_up)[0].user
    zoe.is_active = False  # the admin: a suspected compromise
    zoe.save()
    assert send(scim, "get", f"/scim/v2/Users/{zoe.pk}").status_code == 404
    put = send(scim, "put", f"/scim/v2/Users/{zoe.pk}",
               {"schemas": [USER], "userName": "zoe", "active": True})  # fmt: skip
    assert put.status_code == 404
    listed = send(scim, "get", '/scim/v2/Users?filter=userName eq "zoe"').json()
    assert listed["totalResults"] == 0
    zoe.refresh_from_db()
    assert not zoe.is_active
    engineers = Group.objects.get(name="engineers")
    engineers.user_set.add(zoe)
    emptied = send(scim, "put", f"/scim/v2/Groups/{engineers.pk}",
                   {"schemas": [GROUP], "displayName": "engineers", "members": []})  # fmt: skip
    assert emptied.status_code == 200
    assert set(engineers.user_set.values_list("username", flat=True)) == {"zoe"}
