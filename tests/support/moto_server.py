"""A moto server process on 127.0.0.1 standing in for AWS, with IAM enforced.

Set up as the `make run` sandbox is (integrations/aws/sandbox.py), plus an
admin user for the tests: Airlock's own user may only assume the role and manage
its revoke policy, and the role's sessions may only read one bucket.
"""

import subprocess
import sys
from contextlib import suppress
from pathlib import Path

import boto3

from integrations.aws.sandbox import (
    AIRLOCK_ACTIONS,
    ROLE,
    configure_sandbox,
    create_user,
    enforce_iam,
)
from integrations.vault.sandbox import wait_for_http
from tests.support.pg_target import _free_port


class MotoServer:
    def __init__(self):
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def launch(self) -> None:
        """The bare server: nothing in it, IAM not enforced."""
        moto_server = str(Path(sys.executable).parent / "moto_server")
        self.process = subprocess.Popen(
            [moto_server, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_http(f"{self.endpoint}/moto-api/")

    def start(self) -> None:
        self.launch()
        bootstrap = {"aws_access_key_id": "bootstrap", "aws_secret_access_key": "bootstrap"}
        iam = self.client("iam", **bootstrap)
        configure_sandbox(iam, self.client("s3", **bootstrap))
        self.airlock_keys = create_user(iam, "airlock", AIRLOCK_ACTIONS)
        self.admin_keys = create_user(iam, "admin", ["*"])
        enforce_iam(self.endpoint)

    def client(self, service: str, **credentials):
        credentials = credentials or {
            "aws_access_key_id": self.admin_keys["AccessKeyId"],
            "aws_secret_access_key": self.admin_keys["SecretAccessKey"],
        }
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name="us-east-1", **credentials
        )

    def lift_revocations(self) -> None:
        """moto does not evaluate aws:TokenIssueTime, so a revoke policy denies every
        session of the role; tests lift it so the next session works."""
        iam = self.client("iam")
        with suppress(iam.exceptions.NoSuchEntityException):
            iam.delete_role_policy(RoleName=ROLE, PolicyName="AirlockRevokeOlderSessions")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=20)
