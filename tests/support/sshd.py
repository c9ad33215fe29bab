"""A throwaway sshd on loopback that trusts the test OpenBao's SSH CA and a
revoked-keys list (KRL) built from `manage.py ssh_revoked_serials`, as an
operator's hosts would (README, vault.ssh). A certificate for the principal
`ubuntu` logs in as the user the tests run as."""

import getpass
import os
import subprocess
import time
from pathlib import Path

from tests.support.pg_target import _free_port

SSHD = Path("/usr/sbin/sshd")


class ThrowawaySshd:
    def __init__(self, folder: Path, ca_public_key: str):
        self.folder, self.port = folder, _free_port()
        self.ca = folder / "ca.pub"
        self.krl = folder / "revoked.krl"
        self.process: subprocess.Popen | None = None
        self.ca.write_text(ca_public_key)
        self.login = getpass.getuser()

    def start(self) -> None:
        folder = self.folder
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "host")], check=True
        )
        subprocess.run(["ssh-keygen", "-q", "-k", "-f", str(self.krl)], check=True)
        (folder / "principals").write_text("ubuntu\n")
        (folder / "sshd_config").write_text(
            f"ListenAddress 127.0.0.1:{self.port}\nHostKey {folder / 'host'}\nPidFile none\n"
            f"TrustedUserCAKeys {self.ca}\nRevokedKeys {self.krl}\n"
            f"AuthorizedPrincipalsFile {folder / 'principals'}\nAuthorizedKeysFile none\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nStrictModes no\n"
        )
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation directory
        self.process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(folder / "sshd_config")],
            stdout=subprocess.DEVNULL,
            stderr=open(folder / "sshd.log", "w"),  # noqa: SIM115  # closed with the process
        )
        for _ in range(50):
            if subprocess.run(["ssh-keyscan", "-p", str(self.port), "127.0.0.1"],
                              capture_output=True).returncode == 0:  # fmt: skip
                return
            time.sleep(0.1)
        raise RuntimeError(f"sshd did not start: {(folder / 'sshd.log').read_text()}")

    def revoke(self, spec: str) -> None:
        """Load the KRL built from `ssh_revoked_serials`' output (sshd reads it anew
        for every connection)."""
        spec_file = self.folder / "revoked.spec"
        spec_file.write_text(spec)
        subprocess.run(
            ["ssh-keygen", "-q", "-k", "-f", str(self.krl), "-s", str(self.ca), str(spec_file)],
            check=True,
        )

    def run(self, key: Path, certificate: Path, command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ssh", "-i", str(key), "-o", f"CertificateFile={certificate}", "-p", str(self.port),
             "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
             f"{self.login}@127.0.0.1", command],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
