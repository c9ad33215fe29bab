"""A witness bucket on the tests' moto server: Object Lock in compliance mode, and
an IAM user of its own that may write and read it, as the README tells operators."""

import uuid

from integrations.aws.sandbox import WITNESS_ACTIONS, create_user


def witness_user(aws_server) -> dict:
    """The witness writer's access key (made once per server)."""
    if not hasattr(aws_server, "witness_keys"):
        aws_server.witness_keys = create_user(
            aws_server.client("iam"), "airlock-witness", WITNESS_ACTIONS
        )
    return aws_server.witness_keys


def new_bucket(aws_server, *, object_lock: bool = True) -> str:
    name = f"witness-{uuid.uuid4().hex[:12]}"
    aws_server.client("s3").create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
    return name
