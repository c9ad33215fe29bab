"""The credential provider protocol and its explicit registry.

A provider mints a credential at its source with a hard expiry there (so it dies
even if Airlock dies), revokes it idempotently, and can say whether it is still
live. Providers never see Django models: the lifecycle hands them a
`GrantContext` and stores what they return.
"""

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib import import_module
from typing import Any, Protocol

from lib.secrets import MissingSecret, read_secret

logger = logging.getLogger(__name__)


class ProviderError(Exception):
    """A provider call failed. `permanent` says whether retrying can help.

    Messages must never contain a secret: they are stored and shown.
    """

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class ProviderConfigError(ValueError):
    """A catalog profile's provider config is invalid."""


@dataclass(frozen=True)
class GrantContext:
    grant_id: str
    request_id: str
    profile_id: str
    username: str
    config: dict[str, Any]
    expires_at: datetime
    ssh_public_key: str = ""
    # 0 for the first credential of a grant; n for the one re-issued by its n-th extension.
    serial: int = 0
    # The requester's email, for sources that know people by it (AWS Identity Center).
    email: str = ""


@dataclass(frozen=True)
class Issued:
    # What the owner gets to see once; stored encrypted until revealed or ended.
    credential: dict[str, Any]
    # What revoke/check need; stored in plaintext, so never a secret.
    handle: dict[str, Any]
    # When the credential dies at its source. Never later than the grant's expiry.
    expires_at: datetime
    details: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    kind: str
    # Whether a request must carry the engineer's SSH public key (to sign).
    needs_public_key: bool
    # The shortest grant the source can enforce (AWS STS sessions last 15 minutes at least).
    min_duration: timedelta
    # What revoking does at the source, in a sentence or two for the grant page.
    revocation_note: str
    # True for a credential with no expiry at its source (an assignment): an extension
    # moves the grant's end and keeps it, instead of issuing a new one and revoking this.
    extends_in_place: bool

    def validate_config(self, config: dict[str, Any]) -> None: ...

    def target(self, config: dict[str, Any]) -> str:
        """Where this config's credentials live, as a security member names it to lock
        it (one database server, one Vault mount, one AWS account): "kind:where",
        never a secret."""
        ...

    def missing_configuration(self, config: dict[str, Any]) -> str | None:
        """What this deployment lacks for `config`, found without asking the source
        (a variable not set), or None. A profile that lacks something is offered
        as unavailable: a grant must never fail after its approval for it."""
        ...

    def grant(self, context: GrantContext) -> Issued: ...

    def present(self, credential: dict[str, Any]) -> list[tuple[str, str]]:
        """How the owner sees the credential `grant` issued, once: (label, value) lines."""
        ...

    def revoke(self, handle: dict[str, Any]) -> dict[str, Any] | None:
        """Idempotent. May return facts about how it was revoked, for the audit trail."""
        ...

    def check(self, handle: dict[str, Any]) -> bool: ...

    def healthcheck(self, config: dict[str, Any]) -> None:
        """Raise ProviderError unless the source for this config answers."""
        ...

    def validate_at_source(self, config: dict[str, Any], max_duration: timedelta) -> None:
        """Raise ProviderError if the source cannot serve this profile (`check_catalog
        --online`): unreachable, missing role, or a session limit below max_duration."""
        ...

    def live_handles(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """Handles of the Airlock-made credentials still live at this source."""
        ...


def admin_dsn_missing(dsn_env: str) -> str | None:
    """For `missing_configuration`: why the admin DSN a profile names is not usable
    here (never its path or value: requesters see this), or None."""
    try:
        dsn = read_secret(dsn_env, required=False)
    except MissingSecret:
        return f"{dsn_env} (the admin DSN) cannot be read"
    return None if dsn else f"{dsn_env} (the admin DSN) is not set"


def seconds_left(expires_at: datetime) -> int:
    """Whole seconds until the grant ends, rounded down so the source never outlasts it."""
    seconds = math.floor((expires_at - datetime.now(UTC)).total_seconds())
    if seconds < 1:
        raise ProviderError("the grant has already reached its expiry", permanent=True)
    return seconds


# kind -> "module:Class". Imported lazily so that a provider's client library
# is needed only when a profile uses it.
PROVIDERS: dict[str, str] = {
    "postgres.role": "integrations.postgres.provider:PostgresRoleProvider",
    "vault.token": "integrations.vault.providers:VaultTokenProvider",
    "vault.database": "integrations.vault.providers:VaultDatabaseProvider",
    "vault.ssh": "integrations.vault.providers:VaultSshProvider",
    "aws.sts": "integrations.aws.provider:AwsStsProvider",
    "mysql.user": "integrations.mysql.provider:MysqlUserProvider",
    "aws.identity_center": "integrations.aws.identity_center:IdentityCenterProvider",
}

_instances: dict[str, "GuardedProvider"] = {}


def get_provider(kind: str) -> Provider:
    """The provider of this kind, behind the guard every caller gets."""
    if kind not in PROVIDERS:
        raise ProviderConfigError(
            f"unknown provider kind {kind!r} (known: {', '.join(sorted(PROVIDERS))})"
        )
    if kind not in _instances:
        module_name, class_name = PROVIDERS[kind].split(":")
        _instances[kind] = GuardedProvider(getattr(import_module(module_name), class_name)())
    return _instances[kind]  # type: ignore[return-value]  # it answers as the provider does


class GuardedProvider:
    """A provider with every call to its source guarded: an exception that is not
    a ProviderError (a bug, a client library's surprise) becomes a transient
    ProviderError whose message says only its type, because it could carry
    anything (a DSN, a token); the traceback goes to the log. The lifecycle, the
    reconciler, the health checks and check_catalog all get it so."""

    CALLS = frozenset(
        {"grant", "revoke", "check", "healthcheck", "validate_at_source", "live_handles", "present"}
    )  # fmt: skip

    def __init__(self, provider: Provider):
        self.provider = provider

    def __getattr__(self, name: str):
        value = getattr(self.provider, name)
        if name in self.CALLS and callable(value):
            return partial(_guarded, value)
        return value


def _guarded(method, *args, **kwargs):
    try:
        return method(*args, **kwargs)
    except ProviderError:
        raise
    except Exception as exc:
        logger.exception("provider call %s failed unexpectedly", method.__qualname__)
        raise ProviderError(f"unexpected {type(exc).__name__} in the provider") from None


def reset_providers() -> None:
    """Forget provider instances (tests change the environment they read)."""
    _instances.clear()
