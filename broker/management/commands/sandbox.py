import os

import boto3
from django.core.management.base import BaseCommand, CommandError

from integrations.aws import sandbox as aws_sandbox
from integrations.providers import ProviderError
from integrations.vault import sandbox as vault_sandbox
from integrations.vault.client import vault_client


class Command(BaseCommand):
    help = "Wait for the throwaway OpenBao and moto servers of `make run` and configure them."

    def handle(self, *args, **options):
        try:
            client = vault_client()
            vault_sandbox.wait_for_vault(client.url)
            vault_sandbox.configure_sandbox(client)
            self.stdout.write(f"sandbox OpenBao configured at {client.url}")
            endpoint = os.environ["AWS_ENDPOINT_URL"]
            vault_sandbox.wait_for_http(f"{endpoint}/moto-api/")
            aws_sandbox.configure_sandbox(
                boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1"),
                boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1"),
            )
            self.stdout.write(f"sandbox AWS (moto) configured at {endpoint}")
        except (ProviderError, RuntimeError, KeyError) as exc:
            raise CommandError(f"sandbox: {exc}") from None
