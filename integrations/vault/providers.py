"""Vault/OpenBao providers: `vault.token` and `vault.database`.

Both make Vault enforce the grant's end: a token's `explicit_max_ttl`, a
lease's TTL (and, for database credentials, the plugin's `VALID UNTIL`). What
Airlock stores as the handle is an accessor or a lease id, never a secret.
"""

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from hvac import exceptions as vault_errors

from integrations.vault.client import vault_client, vault_errors_mapped
from lib.providers import (
    GrantContext,
    Issued,
    ProviderConfigError,
    ProviderError,
    seconds_left,
)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_/-]{0,127}$")
HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$")  # a name, IPv4 or IPv6 address
# OpenBao sets a database role's VALID UNTIL 5 s past the lease's end, at creation
# and at each renewal (builtin/logical/database/secret_creds.go: "a small buffer";
# tests/test_vault_providers.py measures it). So the renewal asks for this many
# seconds less than the grant has left: those 5 and 1 for the call's own time.
VALID_UNTIL_PAD = 6


def _check_keys(config: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(config) - allowed
    if unknown:
        raise ProviderConfigError(f"unknown keys: {', '.join(sorted(unknown))}")


def _unless_gone(revoke: Callable[[], Any], what: str) -> None:
    """Revoke; Vault's "invalid accessor/lease" means it is already gone: success."""
    try:
        with vault_errors_mapped():
            revoke()
    except ProviderError as exc:
        if not (exc.permanent and f"invalid {what}" in str(exc).lower()):
            raise


def _still_live(lookup: Callable[[], dict]) -> bool:
    """Whether a token or lease Vault can look up still has time to live."""
    try:
        with vault_errors_mapped():
            data = lookup()["data"]
    except ProviderError as exc:
        if exc.permanent:
            return False  # unknown to Vault: gone
        raise
    return data["ttl"] > 0


def _renewal_increment(expires_at: datetime) -> int:
    """The lease's new TTL: what the grant has left, less VALID_UNTIL_PAD."""
    increment = seconds_left(expires_at) - VALID_UNTIL_PAD
    if increment < 1:
        raise ProviderError(
            f"the grant is too short for vault.database: OpenBao keeps VALID UNTIL "
            f"{VALID_UNTIL_PAD - 1} s past the lease, so it needs {VALID_UNTIL_PAD + 1} s "
            "left at least",
            permanent=True,
        )
    return increment


class VaultTokenProvider:
    """A token with the profile's policies. Orphan, so it does not die with (or
    depend on) Airlock's own token; not renewable; `explicit_max_ttl` caps it."""

    kind = "vault.token"
    revocation_note = (
        "Revoking revokes the Vault token at once. It also expires by itself at the grant's end."
    )
    needs_public_key = False
    extends_in_place = False
    min_duration = timedelta(seconds=1)

    def validate_config(self, config: dict[str, Any]) -> None:
        _check_keys(config, {"policies"})
        policies = config.get("policies")
        if not isinstance(policies, list) or not policies:
            raise ProviderConfigError("policies must be a non-empty list of policy names")
        for policy in policies:
            if not isinstance(policy, str) or not NAME.match(policy) or policy == "root":
                raise ProviderConfigError(f"policies: {policy!r} is not allowed")

    def target(self, config: dict[str, Any]) -> str:
        return "vault:auth/token"

    def missing_configuration(self, config: dict[str, Any]) -> None:
        return None  # Vault says (readiness checks and the grant itself)

    def present(self, credential: dict[str, Any]) -> list[tuple[str, str]]:
        c = credential
        return [
            ("Shell", f"export VAULT_ADDR={c['address']}\nexport VAULT_TOKEN={c['token']}"),
            ("Token", c["token"]),
        ]

    def grant(self, context: GrantContext) -> Issued:
        seconds = seconds_left(context.expires_at)
        client = vault_client()
        with vault_errors_mapped():
            auth = client.auth.token.create_orphan(
                policies=list(context.config["policies"]),
                ttl=f"{seconds}s",
                explicit_max_ttl=f"{seconds}s",
                renewable=False,
                display_name=f"airlock-{context.username}"[:100],
                meta={
                    "airlock_grant": context.grant_id,
                    "airlock_request": context.request_id,
                    "airlock_user": context.username,
                },
            )["auth"]
        return Issued(
            credential={
                "kind": "vault_token",
                "address": settings.VAULT_ADDR,
                "token": auth["client_token"],
            },
            handle={"accessor": auth["accessor"]},
            expires_at=timezone.now() + timedelta(seconds=auth["lease_duration"]),
            details={"policies": auth["policies"]},
        )

    def revoke(self, handle: dict[str, Any]) -> None:
        client = vault_client()
        _unless_gone(lambda: client.auth.token.revoke_accessor(handle["accessor"]), "accessor")

    def check(self, handle: dict[str, Any]) -> bool:
        client = vault_client()
        return _still_live(lambda: client.auth.token.lookup_accessor(handle["accessor"]))

    def healthcheck(self, config: dict[str, Any]) -> None:
        client = vault_client()
        with vault_errors_mapped():
            client.auth.token.lookup_self()

    def validate_at_source(self, config: dict[str, Any], max_duration: timedelta) -> None:
        self.healthcheck(config)

    def live_handles(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """Accessors of all live tokens Airlock made (their meta names the grant)."""
        client = vault_client()
        handles, vanished = [], 0
        with vault_errors_mapped():
            accessors = client.auth.token.list_accessors()["data"]["keys"]
            for accessor in accessors:
                try:
                    data = client.auth.token.lookup_accessor(accessor)["data"]
                except vault_errors.InvalidRequest:
                    continue  # expired between the list and the lookup
                except vault_errors.Forbidden:
                    # Its token went while its accessor was still listed (being revoked
                    # or expiring): the lookup says "bad token", permission denied.
                    vanished += 1
                    continue
                meta = data.get("meta") or {}
                if "airlock_grant" in meta:
                    handles.append({"accessor": accessor})
        if accessors and vanished == len(accessors):
            # Not a race but no right to look tokens up: say so rather than see nothing.
            raise ProviderError("Vault refused every token lookup: permission denied")
        return handles


class VaultDatabaseProvider:
    """Dynamic database credentials. The lease is renewed at once to the grant's
    remaining time less VALID_UNTIL_PAD, which Vault applies to the lease and the
    database plugin to the role's `VALID UNTIL` (plus its own buffer), so neither
    outlives the grant: the credential ends those few seconds early."""

    kind = "vault.database"
    revocation_note = (
        "Revoking revokes the Vault lease, and OpenBao drops the database user; sessions"
        " already open end only if the Vault role's revocation statements end them."
        " The credential ends a few seconds before the grant."
    )
    needs_public_key = False
    extends_in_place = False
    # Less would leave no lease once the pad is taken off (a second for activation).
    min_duration = timedelta(seconds=VALID_UNTIL_PAD + 2)

    def validate_config(self, config: dict[str, Any]) -> None:
        _check_keys(config, {"mount", "role"})
        if not isinstance(config.get("role"), str) or not NAME.match(config["role"]):
            raise ProviderConfigError("role must name the Vault database role")
        mount = config.get("mount", "database")
        if not isinstance(mount, str) or not MOUNT.match(mount):
            raise ProviderConfigError("mount must be a secrets engine path")

    def target(self, config: dict[str, Any]) -> str:
        return f"vault:{config.get('mount', 'database')}"

    def missing_configuration(self, config: dict[str, Any]) -> None:
        return None  # Vault says (readiness checks and the grant itself)

    def present(self, credential: dict[str, Any]) -> list[tuple[str, str]]:
        return [("User", credential["username"]), ("Password", credential["password"])]

    def grant(self, context: GrantContext) -> Issued:
        mount = context.config.get("mount", "database")
        role = context.config["role"]
        _renewal_increment(context.expires_at)  # refuse a grant too short before minting
        client = vault_client()
        with vault_errors_mapped():
            issued = client.secrets.database.generate_credentials(name=role, mount_point=mount)
        lease_id = issued["lease_id"]
        try:
            with vault_errors_mapped():
                # Counted at the last moment: minting took some of the time left.
                increment = _renewal_increment(context.expires_at)
                renewed = client.sys.renew_lease(lease_id=lease_id, increment=increment)
        except ProviderError:
            self.revoke({"lease_id": lease_id})  # never keep a lease we could not bound
            raise
        expires_at = timezone.now() + timedelta(seconds=renewed["lease_duration"])
        if expires_at > context.expires_at + timedelta(seconds=1):
            self.revoke({"lease_id": lease_id})
            raise ProviderError(
                f"Vault kept the lease longer than the grant ({renewed['lease_duration']} s)",
                permanent=True,
            )
        return Issued(
            credential={
                "kind": "vault_database",
                "username": issued["data"]["username"],
                "password": issued["data"]["password"],
                "role": role,
            },
            handle={"lease_id": lease_id},
            expires_at=min(expires_at, context.expires_at),
        )

    def revoke(self, handle: dict[str, Any]) -> None:
        client = vault_client()
        _unless_gone(lambda: client.sys.revoke_lease(lease_id=handle["lease_id"]), "lease")

    def check(self, handle: dict[str, Any]) -> bool:
        client = vault_client()
        return _still_live(lambda: client.sys.read_lease(lease_id=handle["lease_id"]))

    def healthcheck(self, config: dict[str, Any]) -> None:
        client = vault_client()
        with vault_errors_mapped():
            client.secrets.database.read_role(
                name=config["role"], mount_point=config.get("mount", "database")
            )

    def validate_at_source(self, config: dict[str, Any], max_duration: timedelta) -> None:
        self.healthcheck(config)

    def live_handles(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """Every live lease of the role: Airlock is meant to be the only one minting them."""
        mount = config.get("mount", "database")
        client = vault_client()
        prefix = f"{mount}/creds/{config['role']}/"
        with vault_errors_mapped():
            try:
                keys = client.sys.list_leases(prefix=prefix)["data"]["keys"]
            except vault_errors.InvalidPath:
                return []  # no lease under this role at all
        return [{"lease_id": prefix + key} for key in keys if not key.endswith("/")]


class VaultSshProvider:
    """Signs the engineer's SSH public key with Vault's SSH CA.

    The certificate's validity ends with the grant, so it expires by itself.
    It cannot be recalled once issued: an early revoke only puts its serial on
    the list hosts turn into a KRL (`manage.py ssh_revoked_serials`), and
    `check` keeps answering True until the certificate's own end.
    """

    kind = "vault.ssh"
    revocation_note = (
        "An SSH certificate cannot be recalled: after revoking, it stays valid until it"
        " expires at the grant's end, unless the hosts load the revoked-keys list (KRL)"
        " Airlock publishes."
    )
    needs_public_key = True
    extends_in_place = False
    min_duration = timedelta(seconds=1)

    def validate_config(self, config: dict[str, Any]) -> None:
        _check_keys(config, {"mount", "role", "valid_principals", "host", "port", "user"})
        if not isinstance(config.get("role"), str) or not NAME.match(config["role"]):
            raise ProviderConfigError("role must name the Vault SSH role")
        mount = config.get("mount", "ssh")
        if not isinstance(mount, str) or not MOUNT.match(mount):
            raise ProviderConfigError("mount must be a secrets engine path")
        principals = config.get("valid_principals")
        if not isinstance(principals, list) or not principals:
            raise ProviderConfigError("valid_principals must be a non-empty list of login names")
        for principal in principals:
            if not isinstance(principal, str) or not NAME.match(principal):
                raise ProviderConfigError(f"valid_principals: {principal!r} is not a login name")
        host = config.get("host", "localhost")
        if not isinstance(host, str) or not HOST.match(host):
            raise ProviderConfigError("host must be a host name or address")
        port = config.get("port", 22)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise ProviderConfigError("port must be a TCP port number")
        user = config.get("user", "root")
        if not isinstance(user, str) or not NAME.match(user):
            raise ProviderConfigError("user must be a login name")

    def target(self, config: dict[str, Any]) -> str:
        return f"vault:{config.get('mount', 'ssh')}"

    def missing_configuration(self, config: dict[str, Any]) -> None:
        return None  # Vault says (readiness checks and the grant itself)

    def present(self, credential: dict[str, Any]) -> list[tuple[str, str]]:
        c = credential
        if not c.get("host"):
            label = "Certificate (save next to your key as <key>-cert.pub)"
            return [(label, c["certificate"])]
        key = f"~/.ssh/{c['identity']}"
        return [
            (f"Certificate (save as {key}-cert.pub)", c["certificate"]),
            (
                "ssh",
                f"ssh -i {key} -o CertificateFile={key}-cert.pub"
                f" -p {c['port']} {c['user']}@{c['host']}",
            ),
        ]

    def grant(self, context: GrantContext) -> Issued:
        if not context.ssh_public_key:
            raise ProviderError("the request carries no SSH public key", permanent=True)
        seconds = seconds_left(context.expires_at)
        mount = context.config.get("mount", "ssh")
        client = vault_client()
        with vault_errors_mapped():
            data = client.adapter.post(
                f"/v1/{mount}/sign/{context.config['role']}",
                json={
                    "public_key": context.ssh_public_key,
                    "ttl": f"{seconds}s",
                    "valid_principals": ",".join(context.config["valid_principals"]),
                    "cert_type": "user",
                    "key_id": f"airlock-{context.username}-{context.grant_id}",
                },
            )["data"]
        expires_at = timezone.now() + timedelta(seconds=seconds)
        # Vault gives the serial in hex; ssh-keygen and KRLs speak decimal.
        serial = str(int(data["serial_number"].replace("-", "").replace(":", ""), 16))
        return Issued(
            credential={
                "kind": "ssh_certificate",
                "certificate": data["signed_key"].strip(),
                **ssh_login(context.config, context.ssh_public_key),
            },
            handle={"serial": serial, "valid_before": expires_at.isoformat()},
            expires_at=expires_at,
            details={"principals": list(context.config["valid_principals"])},
        )

    def revoke(self, handle: dict[str, Any]) -> dict[str, Any] | None:
        """Nothing to call: an SSH certificate cannot be recalled at the CA."""
        return {
            "certificate_still_valid_until": handle["valid_before"],
            "listed_for_krl": f"serial {handle['serial']} (manage.py ssh_revoked_serials)",
        }

    def check(self, handle: dict[str, Any]) -> bool:
        return datetime.fromisoformat(handle["valid_before"]) > timezone.now()

    def healthcheck(self, config: dict[str, Any]) -> None:
        client = vault_client()
        with vault_errors_mapped():
            client.adapter.get(f"/v1/{config.get('mount', 'ssh')}/roles/{config['role']}")

    def validate_at_source(self, config: dict[str, Any], max_duration: timedelta) -> None:
        self.healthcheck(config)

    def live_handles(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        return []  # Vault keeps no list of the certificates it signed


def ssh_login(config: dict[str, Any], public_key: str) -> dict[str, Any]:
    """Where the certificate logs in, when the profile names a host: what the grant
    page needs to print the whole `ssh` command. The private key's file is guessed
    from the public key's type (ssh-keygen's default name for it)."""
    if not config.get("host"):
        return {}
    key_type = public_key.split(maxsplit=1)[0]
    identity = {"ssh-ed25519": "id_ed25519", "ssh-rsa": "id_rsa"}.get(key_type, "id_ecdsa")
    return {
        "host": config["host"],
        "port": config.get("port", 22),
        "user": config.get("user") or config["valid_principals"][0],
        "identity": identity,
    }
