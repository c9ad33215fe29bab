"""What the sandbox AWS (a moto server) behind `make run` and the tests holds:
a `payments-reader` role that may read a `payments` bucket."""

import json

ACCOUNT = "123456789012"  # moto's account id
ROLE = "payments-reader"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
TRUST_ANYONE_IN_THE_ACCOUNT = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
}


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
