from django.core.management.base import BaseCommand, CommandError

from integrations.providers import ProviderError
from integrations.vault.client import vault_client
from integrations.vault.sandbox import configure_sandbox, wait_for_vault


class Command(BaseCommand):
    help = "Wait for the throwaway OpenBao dev server of `make run` and configure it."

    def handle(self, *args, **options):
        try:
            client = vault_client()
            wait_for_vault(client.url)
        except (ProviderError, RuntimeError) as exc:
            raise CommandError(str(exc)) from None
        configure_sandbox(client)
        self.stdout.write(f"sandbox OpenBao configured at {client.url}")
