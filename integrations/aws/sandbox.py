"""What the sandbox AWS (a moto server) behind `make run` and the tests holds:
a `payments-reader` role that may read a `payments` bucket, and IAM users for
Airlock and its witness writer with the least the README gives them. Once set
up, `enforce_iam` makes moto check every later request against IAM, so a
read-only session's write is refused as AWS would refuse it."""

import json

import requests

ACCOUNT = "123456789012"  # moto's account id
ROLE = "payments-reader"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
TRUST_ANYONE_IN_THE_ACCOUNT = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
}
# README.md, "Airlock's own access to Vault and AWS".
AIRLOCK_ACTIONS = [
    "sts:AssumeRole",
    "sts:TagSession",
    "sts:SetSourceIdentity",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:PutRolePolicy",
    # aws.identity_center (README, "Provider `aws.identity_center`").
    "sso:ListInstances",
    "sso:ListPermissionSets",
    "sso:DescribePermissionSet",
    "sso:CreateAccountAssignment",
    "sso:DeleteAccountAssignment",
    "sso:DescribeAccountAssignmentCreationStatus",
    "sso:DescribeAccountAssignmentDeletionStatus",
    "sso:ListAccountAssignments",
    "identitystore:GetUserId",
]
# README.md, "Anchors: the chain checked against a witness".
WITNESS_ACTIONS = [
    "s3:PutObject",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:ListBucket",
    "s3:ListBucketVersions",
]


def allow(actions: list[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        }
    )


def configure_sandbox(iam, s3) -> None:
    iam.create_role(
        RoleName=ROLE,
        MaxSessionDuration=3600,
        AssumeRolePolicyDocument=json.dumps(TRUST_ANYONE_IN_THE_ACCOUNT),
    )
    iam.put_role_policy(
        RoleName=ROLE, PolicyName="read", PolicyDocument=allow(["s3:ListBucket", "s3:GetObject"])
    )
    s3.create_bucket(Bucket="payments")
    s3.put_object(Bucket="payments", Key="README.txt", Body=b"Read me; you may not write here.\n")


PERMISSION_SET = "PaymentsReadOnly"


def configure_identity_center(sso, store, people: tuple[tuple[str, str], ...]) -> None:
    """moto's Identity Center instance: the example's permission set, and a user for
    each (username, email) so that assignments find them by their email."""
    instance = sso.list_instances()["Instances"][0]
    sso.create_permission_set(
        InstanceArn=instance["InstanceArn"], Name=PERMISSION_SET, SessionDuration="PT1H"
    )
    for username, email in people:
        store.create_user(
            IdentityStoreId=instance["IdentityStoreId"], UserName=username, DisplayName=username,
            Name={"GivenName": username, "FamilyName": "Demo"},
            Emails=[{"Value": email, "Primary": True}],
        )  # fmt: skip


def create_user(iam, name: str, actions: list[str]) -> dict:
    """An IAM user allowed `actions`; its new access key (AccessKeyId, SecretAccessKey)."""
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=name, PolicyDocument=allow(actions))
    return iam.create_access_key(UserName=name)["AccessKey"]


def enforce_iam(endpoint: str) -> None:
    """From now on moto authenticates and authorizes every request (its `reset-auth`):
    only the access keys created so far are known."""
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=5).raise_for_status()
