"""The one place Airlock builds its Vault/OpenBao client and reads Vault errors.

Settings (environment, secrets also as `*_FILE`): VAULT_ADDR, VAULT_NAMESPACE,
VAULT_CACERT (a CA bundle) or VAULT_SKIP_VERIFY=true (tests only), and either
VAULT_TOKEN or an AppRole login (VAULT_ROLE_ID + VAULT_SECRET_ID,
VAULT_APPROLE_MOUNT, default `approle`).
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import hvac
import requests
from hvac import exceptions as vault_errors

from broker.secrets import MissingSecret, read_secret
from integrations.providers import ProviderError

TIMEOUT_SECONDS = 10


def vault_client() -> hvac.Client:
    address = os.environ.get("VAULT_ADDR")
    if not address:
        raise ProviderError("VAULT_ADDR is not set", permanent=True)
    verify: bool | str = os.environ.get("VAULT_CACERT") or True
    if os.environ.get("VAULT_SKIP_VERIFY", "").lower() in {"1", "true", "yes"}:
        verify = False
    client = hvac.Client(
        url=address,
        namespace=os.environ.get("VAULT_NAMESPACE") or None,
        verify=verify,
        timeout=TIMEOUT_SECONDS,
    )
    try:
        token = read_secret("VAULT_TOKEN", required=False)
        if token:
            client.token = token
            return client
        role_id = read_secret("VAULT_ROLE_ID")
        secret_id = read_secret("VAULT_SECRET_ID")
    except MissingSecret as exc:
        raise ProviderError(
            f"Vault credentials for Airlock: set VAULT_TOKEN, or VAULT_ROLE_ID and "
            f"VAULT_SECRET_ID ({exc})",
            permanent=True,
        ) from None
    with vault_errors_mapped():
        client.auth.approle.login(
            role_id=role_id,
            secret_id=secret_id,
            mount_point=os.environ.get("VAULT_APPROLE_MOUNT", "approle"),
        )
    return client


@contextmanager
def vault_errors_mapped() -> Iterator[None]:
    """Vault errors as ProviderErrors: outages and throttling retry, refusals do not."""
    try:
        yield
    except (
        vault_errors.VaultDown,
        vault_errors.InternalServerError,
        vault_errors.BadGateway,
        vault_errors.RateLimitExceeded,
        vault_errors.UnexpectedError,
    ) as exc:
        raise ProviderError(f"Vault unavailable: {_message(exc)}") from None
    except vault_errors.VaultError as exc:
        raise ProviderError(f"Vault refused: {_message(exc)}", permanent=True) from None
    except requests.RequestException as exc:
        raise ProviderError(f"cannot reach Vault: {type(exc).__name__}") from None


def _message(exc: vault_errors.VaultError) -> str:
    errors = getattr(exc, "errors", None)
    message = exc.args[0] if exc.args else None
    text = "; ".join(str(e) for e in errors) if errors else str(message or "")
    # Vault lists its errors under a header ("1 error occurred:\n\t* invalid
    # accessor"): keep the errors, drop the header.
    lines = [line.strip(" \t*") for line in text.splitlines()]
    reasons = [line for line in lines if line and not line.endswith("occurred:")]
    return "; ".join(reasons or [type(exc).__name__])[:300]
