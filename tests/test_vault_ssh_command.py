"""A vault.ssh profile that names its host gets the whole `ssh` command on the
grant page (user, host, port, certificate file); one that does not, the
certificate alone, as before."""

import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from integrations.vault.providers import ssh_login
from lib.providers import GrantContext, ProviderConfigError, get_provider

SSH = {"mount": "ssh", "role": "engineer", "valid_principals": ["ubuntu"]}


def public_key(tmp_path: Path, kind: str = "ed25519") -> str:
    key = tmp_path / f"id_{kind}"
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(key)], check=True)
    return key.with_suffix(".pub").read_text()


def signed(tmp_path, config: dict) -> list[tuple[str, str]]:
    provider = get_provider("vault.ssh")
    issued = provider.grant(
        GrantContext(
            grant_id=str(uuid.uuid4()), request_id=str(uuid.uuid4()), profile_id="ssh",
            username="alice", config=config, ssh_public_key=public_key(tmp_path),
            expires_at=timezone.now() + timedelta(minutes=30),
        )
    )  # fmt: skip
    return provider.present(issued.credential)


def test_the_grant_page_gives_the_whole_ssh_command(vault, tmp_path):
    shown = dict(signed(tmp_path, {**SSH, "host": "127.0.0.1", "port": 2222}))
    assert shown["ssh"] == (
        "ssh -i ~/.ssh/id_ed25519 -o CertificateFile=~/.ssh/id_ed25519-cert.pub"
        " -p 2222 ubuntu@127.0.0.1"
    )
    certificate = shown["Certificate (save as ~/.ssh/id_ed25519-cert.pub)"]
    assert certificate.startswith("ssh-ed25519-cert-v01@openssh.com ")


def test_without_a_host_only_the_certificate(vault, tmp_path):
    shown = signed(tmp_path, SSH)
    assert [label for label, _ in shown] == [
        "Certificate (save next to your key as <key>-cert.pub)"
    ]


def test_the_login_defaults_to_the_first_principal_and_port_22(tmp_path):
    login = ssh_login({**SSH, "host": "db1.internal"}, public_key(tmp_path, "rsa"))
    assert login == {"host": "db1.internal", "port": 22, "user": "ubuntu", "identity": "id_rsa"}
    login = ssh_login({**SSH, "host": "db1", "user": "deploy"}, public_key(tmp_path, "ecdsa"))
    assert (login["user"], login["identity"]) == ("deploy", "id_ecdsa")


@pytest.mark.parametrize(
    "extra",
    [{"port": 0}, {"port": "22"}, {"port": True}, {"host": "-oProxyCommand=x"}, {"user": "a b"}],
)
def test_a_bad_host_port_or_user_is_refused(extra):
    with pytest.raises(ProviderConfigError):
        get_provider("vault.ssh").validate_config({**SSH, "host": "h", **extra})
