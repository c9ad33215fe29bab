"""The sandbox's AWS tells the truth: an aws.sts grant's shell lines talk to
where the session lives (AWS_ENDPOINT_URL), moto enforces IAM so the read-only
session's write is refused, and no console link is offered when there is no
federation endpoint to make one."""

import uuid
from datetime import timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from django.utils import timezone

from airlock_cli.main import credential_env
from integrations.aws.sandbox import ROLE_ARN
from lib.providers import GrantContext, get_provider

pytestmark = pytest.mark.django_db

CONSOLE = "AWS console sign-in link (valid 15 minutes)"


def issued_session():
    return get_provider("aws.sts").grant(
        GrantContext(
            grant_id=str(uuid.uuid4()),
            request_id=str(uuid.uuid4()),
            profile_id="aws-reader",
            username="alice",
            config={"role_arn": ROLE_ARN},
            expires_at=timezone.now() + timedelta(minutes=30),
        )
    )


def pasted(shell: str) -> dict[str, str]:
    """What the shell has after running the `export` lines."""
    return dict(line.removeprefix("export ").split("=", 1) for line in shell.splitlines())


def test_the_pasted_lines_talk_to_the_sandbox_which_refuses_a_write(aws, settings):
    settings.AWS_FEDERATION_ENDPOINT = ""
    settings.AIRLOCK_SANDBOX = True
    shown = dict(get_provider("aws.sts").present(issued_session().credential))
    env = pasted(shown["Shell"])
    assert env["AWS_ENDPOINT_URL"] == aws.endpoint
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
    )
    assert s3.get_object(Bucket="payments", Key="README.txt")["Body"].read()
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.put_object(Bucket="payments", Key="written", Body=b"no")


def test_no_console_link_without_a_federation_endpoint(aws, settings):
    settings.AWS_FEDERATION_ENDPOINT = ""
    shown = get_provider("aws.sts").present(issued_session().credential)
    assert [label for label, _ in shown] == ["Shell"]


def test_outside_the_sandbox_an_endpoint_is_airlocks_own_not_the_users(aws, settings):
    """A deployment's AWS_ENDPOINT_URL (a VPC endpoint for STS) is not handed to
    people: it would point every AWS service of their CLI at it."""
    settings.AIRLOCK_SANDBOX = False
    assert "endpoint_url" not in issued_session().credential


def test_a_session_of_aws_itself_names_no_endpoint(settings):
    settings.AWS_FEDERATION_ENDPOINT = ""
    credential = {
        "access_key_id": "ASIA", "secret_access_key": "s", "session_token": "t",
        "region": "eu-west-1",
    }  # fmt: skip
    shell = dict(get_provider("aws.sts").present(credential))["Shell"]
    assert "AWS_ENDPOINT_URL" not in pasted(shell)
    assert "AWS_ENDPOINT_URL" not in credential_env("aws", credential)


def test_the_cli_hands_the_endpoint_to_the_command_it_runs(aws, settings):
    settings.AIRLOCK_SANDBOX = True
    credential = issued_session().credential
    assert credential_env("aws", credential)["AWS_ENDPOINT_URL"] == aws.endpoint
