"""`manage.py sandbox` leaves moto enforcing IAM: the key it was set up with is
forgotten, Airlock and its witness writer get IAM users of their own with the
README's least privileges, their keys in var/ (mode 0600) for run-dev.sh."""

import stat

import boto3
import pytest
from botocore.exceptions import ClientError

from airlock.management.commands.sandbox import BOOTSTRAP, Command, sandbox_key_file
from integrations.aws.sandbox import ROLE
from tests.support.moto_server import MotoServer


@pytest.fixture
def bare_moto():
    server = MotoServer()
    server.launch()
    yield server
    server.stop()


def client(server, service, user):
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=sandbox_key_file(user, "access-key-id").read_text(),
        aws_secret_access_key=sandbox_key_file(user, "secret-access-key").read_text(),
    )


def test_moto_enforces_iam_after_the_set_up(bare_moto, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.AWS_ENDPOINT_URL = bare_moto.endpoint
    settings.AIRLOCK_WITNESS_BUCKET = "sandbox-witness"
    Command().configure_aws()

    for user in ("airlock", "witness"):
        for part in ("access-key-id", "secret-access-key"):
            assert stat.S_IMODE(sandbox_key_file(user, part).stat().st_mode) == 0o600
    iam = client(bare_moto, "iam", "airlock")
    assert iam.get_role(RoleName=ROLE)["Role"]["RoleName"] == ROLE
    sso = client(bare_moto, "sso-admin", "airlock")  # aws.identity_center's calls
    instance = sso.list_instances()["Instances"][0]["InstanceArn"]
    assert len(sso.list_permission_sets(InstanceArn=instance)["PermissionSets"]) == 1
    with pytest.raises(ClientError, match="AccessDenied"):
        iam.create_user(UserName="mallory")
    witness = client(bare_moto, "s3", "witness")
    witness.put_object(Bucket="sandbox-witness", Key="anchors/1.json", Body=b"{}")
    with pytest.raises(ClientError, match="AccessDenied"):
        witness.delete_object(Bucket="sandbox-witness", Key="anchors/1.json")
    forgotten = boto3.client(
        "iam", endpoint_url=bare_moto.endpoint, region_name="us-east-1", **BOOTSTRAP
    )
    with pytest.raises(ClientError, match="InvalidClientTokenId"):
        forgotten.get_role(RoleName=ROLE)
