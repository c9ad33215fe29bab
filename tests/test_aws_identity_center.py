"""`aws.identity_center` against moto's sso-admin and identitystore (IAM
enforced; Airlock acts as its own IAM user): alice's account assignment exists
inside the window and is gone after revoke and after expiry; an extension keeps
it; an assignment no grant explains is an orphan; who cannot be found, and a
permission set whose sessions outlive the profile, are refused clearly."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit import trail
from broker import lifecycle
from broker.catalog.load import parse_catalog
from broker.models import AccessProfile, Grant
from broker.reconcile import find_orphans
from integrations.aws.identity_center import IdentityCenterProvider
from lib.providers import ProviderError, get_provider
from tests.support.catalogs import TEST_CATALOG
from tests.support.grants import active_grant, extend, half_way
from tests.support.people import WEB

ACCOUNT = "123456789012"
CONFIG = f'{{account_id: "{ACCOUNT}", permission_set: PaymentsReadOnly}}'
PROFILE = f"""
  - id: aws-sso
    title: Payments account through IAM Identity Center
    provider: {{kind: aws.identity_center, config: {CONFIG}}}
    requesters: {{groups: [engineers]}}
    approvers: {{groups: [sre]}}
    max_duration: 2h
    extension: {{max_total: 4h, after_share: 0.5}}
"""


@pytest.fixture
def center(aws, catalog):
    """The instance moto has, a permission set and alice's Identity Center user."""
    sso, store = aws.client("sso-admin"), aws.client("identitystore")
    instance = sso.list_instances()["Instances"][0]
    permission_set = permission_set_arn(sso, instance, "PaymentsReadOnly")
    alice = user_id(store, instance, "alice") or store.create_user(
        IdentityStoreId=instance["IdentityStoreId"], UserName="alice",
        DisplayName="Alice", Name={"GivenName": "Alice", "FamilyName": "A"},
        Emails=[{"Value": "alice@example.com", "Primary": True}],
    )["UserId"]  # fmt: skip
    lifecycle.catalog_sync(catalog=parse_catalog((TEST_CATALOG + PROFILE).encode()),
                           info=trail.SYSTEM)  # fmt: skip
    yield {"sso": sso, "instance": instance, "set": permission_set, "alice": alice}
    for item in assignments(sso, instance, permission_set):  # moto lives for the session
        sso.delete_account_assignment(
            InstanceArn=instance["InstanceArn"], TargetId=ACCOUNT, TargetType="AWS_ACCOUNT",
            PermissionSetArn=permission_set, PrincipalType="USER",
            PrincipalId=item["PrincipalId"],
        )  # fmt: skip


def permission_set_arn(sso, instance, name: str) -> str:
    """The permission set of that name, made on first use (moto lives for the session)."""
    arn = instance["InstanceArn"]
    for found in sso.list_permission_sets(InstanceArn=arn)["PermissionSets"]:
        described = sso.describe_permission_set(InstanceArn=arn, PermissionSetArn=found)
        if described["PermissionSet"]["Name"] == name:
            return found
    created = sso.create_permission_set(InstanceArn=arn, Name=name, SessionDuration="PT1H")
    return created["PermissionSet"]["PermissionSetArn"]


def user_id(store, instance, name: str) -> str | None:
    try:
        return store.get_user_id(
            IdentityStoreId=instance["IdentityStoreId"],
            AlternateIdentifier={"UniqueAttribute": {"AttributePath": "UserName",
                                                     "AttributeValue": name}},
        )["UserId"]  # fmt: skip
    except store.exceptions.ResourceNotFoundException:
        return None


def assignments(sso, instance, permission_set) -> list[dict]:
    return sso.list_account_assignments(
        InstanceArn=instance["InstanceArn"], AccountId=ACCOUNT, PermissionSetArn=permission_set
    )["AccountAssignments"]


def assigned(center) -> list[str]:
    return [a["PrincipalId"] for a in assignments(center["sso"], center["instance"], center["set"])]


def active(people, submit, step_up) -> Grant:
    grant = active_grant(people, submit, step_up, duration="1h", slug="aws-sso")
    assert grant.status == "active", grant.last_error
    return grant


def test_assigned_in_the_window_and_gone_after_revoke(center, people, submit, step_up):
    grant = active(people, submit, step_up)
    assert assigned(center) == [center["alice"]]  # found by alice's email
    step_up(people.alice)
    shown = lifecycle.grant_reveal(grant_id=grant.pk, user=people.alice, info=WEB)
    assert (
        shown["portal_url"] == f"https://{center['instance']['IdentityStoreId']}.awsapps.com/start"
    )
    lines = dict(get_provider("aws.identity_center").present(shown))
    assert "aws sso login --profile" in lines["AWS CLI"]

    lifecycle.grant_revoke(grant_id=grant.pk, actor=people.alice, reason="done", info=WEB)
    lifecycle.grant_revoke_execute(grant_id=grant.pk)
    assert Grant.objects.get(pk=grant.pk).status == "revoked"
    assert assigned(center) == []
    assert not get_provider("aws.identity_center").check(grant.handle)


def test_gone_after_expiry(center, people, submit, step_up):
    grant = active(people, submit, step_up)
    Grant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert lifecycle.sweep()["grants_expired"] == 1
    assert Grant.objects.get(pk=grant.pk).status == "revoked"
    assert assigned(center) == []


def test_an_extension_keeps_the_assignment_and_moves_the_end(center, people, submit, step_up):
    grant = active(people, submit, step_up)
    half_way(grant)
    before = grant.expires_at
    step_up(people.bob)
    asked = extend(grant, people.alice, duration="30m")
    lifecycle.access_request_approve(request_id=asked.pk, approver=people.bob, info=WEB)
    lifecycle.grant_extend_execute(request_id=asked.pk)
    grant.refresh_from_db()
    assert grant.extensions == 1 and grant.expires_at == before + timedelta(minutes=30)
    assert assigned(center) == [center["alice"]]


def test_an_assignment_no_grant_explains_is_an_orphan(center, people):
    center["sso"].create_account_assignment(
        InstanceArn=center["instance"]["InstanceArn"], TargetId=ACCOUNT,
        TargetType="AWS_ACCOUNT", PermissionSetArn=center["set"], PrincipalType="USER",
        PrincipalId=center["alice"],
    )  # fmt: skip
    orphans = [o.handle["principal_id"] for o in find_orphans().orphans if o.profile == "aws-sso"]
    assert orphans == [center["alice"]]


def test_someone_identity_center_does_not_know_is_refused_clearly(center, people, submit, step_up):
    people.alice.email = "nobody@example.com"
    people.alice.save()
    request = submit(people.alice, slug="aws-sso", duration="1h")
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.pk, approver=people.bob, info=WEB)
    grant = Grant.objects.get(request=request)
    lifecycle.grant_activate(grant_id=grant.pk)
    grant.refresh_from_db()
    assert grant.status == "failed"
    assert "no Identity Center user with Emails.Value nobody@example.com" in grant.last_error
    assert assigned(center) == []


def test_a_permission_set_whose_sessions_outlive_the_profile_is_refused(center):
    spec = AccessProfile.objects.get(slug="aws-sso").definition.provider
    with pytest.raises(ProviderError, match="longer than the profile's max_duration"):
        get_provider(spec.kind).validate_at_source(spec.config, timedelta(minutes=30))
    get_provider(spec.kind).validate_at_source(spec.config, timedelta(hours=2))


def test_a_creation_that_outlasts_the_wait_leaves_no_assignment(
    center, people, submit, step_up, monkeypatch
):
    """AWS took the assignment but Airlock stopped waiting: with no handle recorded,
    nothing else would delete it, and it has no end of its own."""
    waited = IdentityCenterProvider._wait

    def too_slow(self, sso, instance_arn, status, what):
        waited(self, sso, instance_arn, status, what)  # it does finish, after the deadline
        if what == "creation":
            raise ProviderError("the assignment's creation was still in progress after 30 s")

    monkeypatch.setattr(IdentityCenterProvider, "_wait", too_slow)
    request = submit(people.alice, slug="aws-sso", duration="1h")
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.pk, approver=people.bob, info=WEB)
    grant = Grant.objects.get(request=request)
    Grant.objects.filter(pk=grant.pk).update(
        activation_attempts=lifecycle.ACTIVATION_MAX_ATTEMPTS - 1
    )
    lifecycle.grant_activate(grant_id=grant.pk)
    assert Grant.objects.get(pk=grant.pk).status == "failed"
    assert assigned(center) == []
