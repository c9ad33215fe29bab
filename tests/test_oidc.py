"""OIDC sign-in maps IdP groups to Airlock groups; only mapped groups are managed.

No identity provider runs here, so the backend is exercised with claims as the
IdP would send them; the redirect/token exchange is mozilla-django-oidc's.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.oidc import AirlockOIDCBackend, groups_from_claims, username_from_claims

MAPPING = {"okta-sre": "sre", "okta-eng": "engineers"}


def test_groups_from_claims():
    assert groups_from_claims({"groups": ["okta-sre", "other"]}, "groups", MAPPING) == {"sre"}
    assert groups_from_claims({"groups": "okta-eng"}, "groups", MAPPING) == {"engineers"}
    assert groups_from_claims({}, "groups", MAPPING) == set()


def test_username_prefers_preferred_username():
    assert username_from_claims({"preferred_username": "bob", "email": "b@x"}) == "bob"
    assert username_from_claims({"email": "b@x"}) == "b@x"


def test_backend_creates_and_updates_users_and_groups(db, settings):
    settings.AIRLOCK_OIDC_GROUP_MAP = MAPPING
    Group.objects.create(name="auditors")
    backend = AirlockOIDCBackend.__new__(AirlockOIDCBackend)
    backend.UserModel = get_user_model()
    user = backend.create_user(
        {"preferred_username": "frank", "email": "f@x", "groups": ["okta-sre", "okta-eng"]}
    )
    user.groups.add(Group.objects.get(name="auditors"))  # granted in Airlock, not by the IdP
    assert set(user.groups.values_list("name", flat=True)) == {"sre", "engineers", "auditors"}
    backend.update_user(user, {"preferred_username": "frank", "groups": ["okta-eng"]})
    assert set(user.groups.values_list("name", flat=True)) == {"engineers", "auditors"}
    assert list(backend.filter_users_by_claims({"preferred_username": "frank"})) == [user]
