"""Development only: `make run`'s throwaway sources, set up with what the example
catalog's profiles need. Production never runs this."""

import os
from pathlib import Path

import boto3
import psycopg
import pymysql
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from integrations.aws import sandbox as aws_sandbox
from integrations.mysql import sandbox as mysql_sandbox
from integrations.postgres import sandbox as postgres_sandbox
from integrations.vault import sandbox as vault_sandbox
from integrations.vault.client import vault_client
from lib.providers import ProviderError

# Before moto enforces IAM, any key is accepted: the set-up uses one that is then forgotten.
BOOTSTRAP = {"aws_access_key_id": "bootstrap", "aws_secret_access_key": "bootstrap"}  # nosec B105  # no secret: moto takes any key before IAM is on


class Command(BaseCommand):
    help = (
        "Wait for the throwaway OpenBao, moto and (if given) PostgreSQL servers of "
        "`make run` and configure them."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--postgres-port", type=int, help="a fresh cluster's port on 127.0.0.1 to set up"
        )
        parser.add_argument(
            "--postgres-password-file", type=Path, help="its superuser's (postgres) password"
        )
        parser.add_argument(
            "--mysql", action="store_true",
            help="set up the local MariaDB/MySQL (root without a password) for core-db-readonly",
        )  # fmt: skip

    def handle(self, *args, **options):
        try:
            client = vault_client()
            vault_sandbox.wait_for_vault(client.url)
            vault_sandbox.configure_sandbox(client)
            # For the sandbox's sshd: the CA it trusts.
            ca = client.adapter.get("/v1/ssh/config/ca")["data"]["public_key"]
            write_private(settings.VAR_DIR / "sandbox-ssh-ca.pub", ca.strip() + "\n")
            self.stdout.write(f"sandbox OpenBao configured at {client.url}")
            users = get_user_model().objects.exclude(email="")
            self.configure_aws(tuple(users.values_list("username", "email")))
            if options["postgres_port"]:
                self.configure_postgres(options["postgres_port"], options["postgres_password_file"])
            if options["mysql"]:
                dsn = mysql_sandbox.configure_sandbox()
                write_private(settings.VAR_DIR / "sandbox-mysql-dsn-core", dsn)
                self.stdout.write(
                    f"local MariaDB/MySQL set up: database {mysql_sandbox.CORE}, admin"
                    f" {mysql_sandbox.ADMIN} (not root), events in {mysql_sandbox.EVENTS}"
                )
        except (ProviderError, RuntimeError, psycopg.Error, pymysql.err.MySQLError) as exc:
            raise CommandError(f"sandbox: {exc}") from None

    def configure_postgres(self, port: int, password_file: Path) -> None:
        dsn = postgres_sandbox.configure_sandbox(port, password_file.read_text().strip())
        write_private(settings.VAR_DIR / "sandbox-pg-dsn-payments", dsn)
        self.stdout.write(
            f"sandbox PostgreSQL configured at 127.0.0.1:{port}, admin role"
            f" {postgres_sandbox.ADMIN} (not a superuser)"
        )

    def configure_aws(self, people: tuple[tuple[str, str], ...] = ()) -> None:
        """moto set up as AWS for the example profiles; `people` (username, email)
        get an Identity Center user each."""
        endpoint = settings.AWS_ENDPOINT_URL
        if not endpoint:
            raise CommandError("sandbox: AWS_ENDPOINT_URL is not set")
        vault_sandbox.wait_for_http(f"{endpoint}/moto-api/")
        iam, s3 = (
            boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", **BOOTSTRAP)
            for service in ("iam", "s3")
        )
        aws_sandbox.configure_sandbox(iam, s3)
        sso, store = (
            boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", **BOOTSTRAP)
            for service in ("sso-admin", "identitystore")
        )
        aws_sandbox.configure_identity_center(sso, store, people)
        keys = {"airlock": aws_sandbox.create_user(iam, "airlock", aws_sandbox.AIRLOCK_ACTIONS)}
        witness = settings.AIRLOCK_WITNESS_BUCKET
        if witness:
            # Object Lock, as a real witness must have: anchors refuse any other bucket.
            s3.create_bucket(Bucket=witness, ObjectLockEnabledForBucket=True)
            keys["witness"] = aws_sandbox.create_user(
                iam, "airlock-witness", aws_sandbox.WITNESS_ACTIONS
            )
            self.stdout.write(f"sandbox witness bucket {witness} (Object Lock) created")
        aws_sandbox.enforce_iam(endpoint)
        for user, key in keys.items():
            write_private(sandbox_key_file(user, "access-key-id"), key["AccessKeyId"])
            write_private(sandbox_key_file(user, "secret-access-key"), key["SecretAccessKey"])
        self.stdout.write(f"sandbox AWS (moto) configured at {endpoint}, IAM enforced")


def sandbox_key_file(user: str, part: str) -> Path:
    """Where scripts/run-dev.sh finds the keys (as `*_FILE`) of an IAM user made here."""
    return settings.VAR_DIR / f"sandbox-aws-{user}-{part}"


def write_private(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
