"""Development only: `make run`'s throwaway sources, set up with what the example
catalog's profiles need. Production never runs this."""

import boto3
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.aws import sandbox as aws_sandbox
from integrations.vault import sandbox as vault_sandbox
from integrations.vault.client import vault_client
from lib.providers import ProviderError


class Command(BaseCommand):
    help = "Wait for the throwaway OpenBao and moto servers of `make run` and configure them."

    def handle(self, *args, **options):
        try:
            client = vault_client()
            vault_sandbox.wait_for_vault(client.url)
            vault_sandbox.configure_sandbox(client)
            self.stdout.write(f"sandbox OpenBao configured at {client.url}")
            endpoint = settings.AWS_ENDPOINT_URL
            if not endpoint:
                raise CommandError("sandbox: AWS_ENDPOINT_URL is not set")
            vault_sandbox.wait_for_http(f"{endpoint}/moto-api/")
            aws_sandbox.configure_sandbox(
                boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1"),
                boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1"),
            )
            self.stdout.write(f"sandbox AWS (moto) configured at {endpoint}")
            witness = settings.AIRLOCK_WITNESS_BUCKET
            if witness:
                # Object Lock, as a real witness must have: anchors refuse any other bucket.
                boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
                    Bucket=witness, ObjectLockEnabledForBucket=True
                )
                self.stdout.write(f"sandbox witness bucket {witness} (Object Lock) created")
        except (ProviderError, RuntimeError) as exc:
            raise CommandError(f"sandbox: {exc}") from None
