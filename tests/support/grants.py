"""Helpers to bring a grant to a given state through the real lifecycle."""

import os

import boto3
import hvac
import pymysql
from botocore.exceptions import ClientError
from django.utils import timezone
from hvac import exceptions as vault_errors

from broker import lifecycle
from broker.models import Grant
from tests.support.people import WEB
from tests.support.pg_target import can_login


def active_grant(people, submit, step_up, duration: str = "10m", slug: str = "test-db") -> Grant:
    """alice asks, bob approves, the activation runs here (no worker needed)."""
    request = submit(people.alice, duration=duration, slug=slug)
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.id, approver=people.bob, info=WEB)
    grant = Grant.objects.get(request=request)
    lifecycle.grant_activate(grant_id=grant.id)
    grant.refresh_from_db()
    return grant


def credential_dsn(c: dict) -> str:
    return f"postgresql://{c['user']}:{c['password']}@{c['host']}:{c['port']}/{c['dbname']}"


def credential_works(credential: dict, pg_target, vault) -> bool:
    """Try the credential at its source, whatever its kind."""
    kind = credential["kind"]
    if kind == "postgres":
        return can_login(credential_dsn(credential))
    if kind == "vault_database":
        return can_login(
            f"postgresql://{credential['username']}:{credential['password']}"
            f"@127.0.0.1:{pg_target.port}/postgres"
        )
    if kind == "vault_token":
        client = hvac.Client(url=vault.address, token=credential["token"])
        try:
            client.secrets.kv.v2.read_secret_version("payments", raise_on_deleted_version=True)
        except vault_errors.Forbidden:
            return False
        return True
    if kind == "aws":
        s3 = boto3.client(
            "s3",
            endpoint_url=os.environ["AWS_ENDPOINT_URL"],
            region_name=credential["region"],
            aws_access_key_id=credential["access_key_id"],
            aws_secret_access_key=credential["secret_access_key"],
            aws_session_token=credential["session_token"],
        )
        try:
            s3.list_objects_v2(Bucket="payments")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "AccessDenied":
                return False
            raise
        return True
    if kind == "aws_identity_center":
        return identity_center_assigned(credential)
    if kind == "mysql":
        from tests.support.mariadb import answers, session_of

        try:
            with session_of(credential) as session:
                return answers(session)
        except pymysql.err.MySQLError:
            return False
    raise AssertionError(f"no way to try a {kind} credential")


def identity_center_assigned(credential: dict) -> bool:
    """Whether the Identity Center user the credential names holds its assignment:
    what a sign-in at the AWS access portal would find (asked with Airlock's keys)."""
    aws = {"endpoint_url": os.environ["AWS_ENDPOINT_URL"], "region_name": "us-east-1"}
    sso, store = boto3.client("sso-admin", **aws), boto3.client("identitystore", **aws)
    instance = sso.list_instances()["Instances"][0]
    arn = instance["InstanceArn"]
    user = store.get_user_id(
        IdentityStoreId=instance["IdentityStoreId"],
        AlternateIdentifier={"UniqueAttribute": {"AttributePath": "Emails.Value",
                                                 "AttributeValue": credential["signs_in_as"]}},
    )["UserId"]  # fmt: skip
    for permission_set in sso.list_permission_sets(InstanceArn=arn)["PermissionSets"]:
        described = sso.describe_permission_set(InstanceArn=arn, PermissionSetArn=permission_set)
        if described["PermissionSet"]["Name"] != credential["permission_set"]:
            continue
        assigned = sso.list_account_assignments(
            InstanceArn=arn, AccountId=credential["account_id"], PermissionSetArn=permission_set
        )["AccountAssignments"]
        return user in {item["PrincipalId"] for item in assigned}
    return False


def extend(grant, user, duration="30m", reason="still migrating"):
    from lib.durations import parse_duration

    return lifecycle.grant_extend_request(
        grant_id=grant.pk, actor=user, duration=parse_duration(duration), reason=reason, info=WEB
    )


def half_way(grant: Grant) -> None:
    """Move the grant's window back so that more than half of it has passed."""
    Grant.objects.filter(pk=grant.pk).update(
        activated_at=timezone.now() - grant.duration * 0.6,
        expires_at=timezone.now() + grant.duration * 0.4,
    )
    grant.refresh_from_db()


def reveal(grant, user, step_up) -> dict:
    step_up(user)
    return lifecycle.grant_reveal(grant_id=grant.pk, user=user, info=WEB)


def revoke_failing_for(monkeypatch, role: str, error: Exception) -> None:
    """The postgres.role provider raises `error` when revoking `role`, and revokes
    any other role for real."""
    from lib.providers import get_provider

    provider = get_provider("postgres.role")
    real_revoke = provider.revoke

    def revoke(handle):
        if handle["role"] == role:
            raise error
        return real_revoke(handle)

    monkeypatch.setattr(provider, "revoke", revoke)
