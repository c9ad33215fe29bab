"""What the sandbox OpenBao behind `make run` (and the test suite's) holds:
a secret and a policy to read it, an SSH CA with an `engineer` role, and,
given a PostgreSQL to manage, the database engine with a `reader` role."""

import time

import hvac
import requests

READ_POLICY = 'path "secret/data/payments" { capabilities = ["read"] }'
DATABASE_CREATION = (
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"
    " IN ROLE app_reader;"
)
# OpenBao's default revocation drops the user but leaves its sessions running
# (one that ran SET ROLE keeps the granted role's rights): end them first, as
# README.md (`vault.database`) recommends.
DATABASE_REVOCATION = [
    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = '{{name}}';",
    'DROP ROLE IF EXISTS "{{name}}";',
]


def wait_for_http(url: str, timeout: float = 30) -> None:
    """Wait until a freshly started server answers `url` with a success."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answered at {url}")
        time.sleep(0.1)


def wait_for_vault(address: str, timeout: float = 30) -> None:
    wait_for_http(f"{address}/v1/sys/health", timeout)


def configure_sandbox(client: hvac.Client, *, postgres: dict | None = None) -> None:
    """`postgres`: {"port", "username", "password"} of a server with an app_reader role."""
    client.sys.create_or_update_policy("payments-read", READ_POLICY)
    client.secrets.kv.v2.create_or_update_secret("payments", secret={"api_key": "k-123"})
    client.sys.enable_secrets_engine("ssh", path="ssh")
    client.adapter.post("/v1/ssh/config/ca", json={"generate_signing_key": True})
    client.adapter.post(
        "/v1/ssh/roles/engineer",
        json={
            "key_type": "ca",
            "allow_user_certificates": True,
            "allow_user_key_ids": True,
            "allowed_users": "ubuntu,postgres-admin",
            "default_extensions": {"permit-pty": ""},
            "allowed_extensions": "permit-pty",
            "ttl": "1h",
            "max_ttl": "24h",
        },
    )
    if postgres is None:
        return
    client.sys.enable_secrets_engine("database", path="database")
    client.secrets.database.configure(
        name="target",
        plugin_name="postgresql-database-plugin",
        connection_url=(
            "postgresql://{{username}}:{{password}}@"
            f"127.0.0.1:{postgres['port']}/postgres?sslmode=disable"
        ),
        username=postgres["username"],
        password=postgres["password"],
        allowed_roles=["reader"],
    )
    set_reader_role(client)


def set_reader_role(client: hvac.Client, revocation: list[str] = DATABASE_REVOCATION) -> None:
    """The database engine's `reader` role (the tests try other revocation statements)."""
    client.secrets.database.create_role(
        name="reader",
        db_name="target",
        creation_statements=[DATABASE_CREATION],
        revocation_statements=revocation,
        default_ttl="1h",
        max_ttl="24h",
    )
