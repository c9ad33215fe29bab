"""A witness bucket on the tests' moto server: Object Lock in compliance mode, and
an IAM user of its own that may write and read it, as the README tells operators."""

import uuid

from integrations.aws.sandbox import allow

WITNESS_ACTIONS = [
    "s3:PutObject",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:ListBucket",
    "s3:ListBucketVersions",
]


def witness_user(aws_server) -> dict:
    """The witness writer's access key (made once per server)."""
    if not hasattr(aws_server, "witness_keys"):
        iam = aws_server.client("iam")
        iam.create_user(UserName="airlock-witness")
        iam.put_user_policy(
            UserName="airlock-witness", PolicyName="witness", PolicyDocument=allow(WITNESS_ACTIONS)
        )
        aws_server.witness_keys = iam.create_access_key(UserName="airlock-witness")["AccessKey"]
    return aws_server.witness_keys


def new_bucket(aws_server, *, object_lock: bool = True) -> str:
    name = f"witness-{uuid.uuid4().hex[:12]}"
    aws_server.client("s3").create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
    return name
