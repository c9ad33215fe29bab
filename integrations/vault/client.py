"""The one place Airlock builds its Vault/OpenBao client and reads Vault errors.

Settings (environment, secrets also as `*_FILE`): VAULT_ADDR, VAULT_NAMESPACE,
VAULT_CACERT (a CA bundle) or VAULT_SKIP_VERIFY=true (tests only), and either
VAULT_TOKEN or an AppRole login (VAULT_ROLE_ID + VAULT_SECRET_ID,
VAULT_APPROLE_MOUNT, default `approle`).
"""

import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import hvac
import requests
from django.conf import settings
from hvac import exceptions as vault_errors

from lib.providers import ProviderError
from lib.secrets import MissingSecret, read_secret

TIMEOUT_SECONDS = 10


def vault_client() -> hvac.Client:
    """This thread's client, made once and reused while its login lasts: one per
    call cost a new connection (and with AppRole a new login, so a new Vault
    token) every time. A call that fails forgets it (`vault_errors_mapped`)."""
    address = settings.VAULT_ADDR
    if not address:
        raise ProviderError("VAULT_ADDR is not set", permanent=True)
    verify: bool | str = False if settings.VAULT_SKIP_VERIFY else settings.VAULT_CACERT or True
    namespace = settings.VAULT_NAMESPACE or None
    try:
        token = read_secret("VAULT_TOKEN", required=False)
        login = None if token else (read_secret("VAULT_ROLE_ID"), read_secret("VAULT_SECRET_ID"))
    except MissingSecret as exc:
        raise ProviderError(
            f"Vault credentials for Airlock: set VAULT_TOKEN, or VAULT_ROLE_ID and "
            f"VAULT_SECRET_ID ({exc})",
            permanent=True,
        ) from None
    # The process id is part of the key: a client inherited across fork() shares
    # its connection with the parent.
    key = (os.getpid(), address, namespace, verify, token, login)
    held = getattr(_held, "client", None)
    _held.reused = held is not None and held[0] == key and time.monotonic() < held[2]
    if _held.reused:
        return held[1]
    client = hvac.Client(url=address, namespace=namespace, verify=verify, timeout=TIMEOUT_SECONDS)
    renew_at = math.inf
    if token:
        client.token = token
    else:
        role_id, secret_id = login
        with vault_errors_mapped():
            auth = client.auth.approle.login(
                role_id=role_id,
                secret_id=secret_id,
                mount_point=settings.VAULT_APPROLE_MOUNT,
            )["auth"]
        if auth.get("lease_duration"):  # log in again before the token expires
            renew_at = time.monotonic() + auth["lease_duration"] * 0.75
    _held.client = (key, client, renew_at)
    return client


def _forget_client() -> None:
    _held.client = None


# This thread's client: (what it was made from, the client, when to log in again).
_held = threading.local()
# Errors after which the next call starts with a new client (and login); a
# refusal of the request itself, such as an unknown lease, keeps the client.
LOST_CLIENT = (
    vault_errors.Unauthorized,
    vault_errors.Forbidden,
    vault_errors.VaultDown,
    vault_errors.InternalServerError,
    vault_errors.BadGateway,
    vault_errors.UnexpectedError,
    requests.RequestException,
)


@contextmanager
def vault_errors_mapped() -> Iterator[None]:
    """Vault errors as ProviderErrors: outages and throttling retry, refusals do not."""
    try:
        try:
            yield
        except LOST_CLIENT:
            _forget_client()  # a login revoked or expired, or a dead connection
            raise
    except (
        vault_errors.VaultDown,
        vault_errors.InternalServerError,
        vault_errors.BadGateway,
        vault_errors.RateLimitExceeded,
        vault_errors.UnexpectedError,
    ) as exc:
        raise ProviderError(f"Vault unavailable: {_message(exc)}") from None
    except vault_errors.VaultError as exc:
        # Refused with a login made earlier (revoked since, or Vault restarted):
        # the retry logs in afresh, and only its refusal is final.
        stale = isinstance(exc, vault_errors.Unauthorized | vault_errors.Forbidden)
        stale = stale and getattr(_held, "reused", False)
        raise ProviderError(f"Vault refused: {_message(exc)}", permanent=not stale) from None
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
