"""vault.ssh against a real OpenBao SSH CA: the engineer's key, signed for the
grant's window, verified with ssh-keygen; early revoke ends up in a KRL."""

import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from broker import lifecycle
from broker.models import Grant
from lib.providers import get_provider
from tests.support.people import WEB

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ssh_key(tmp_path) -> Path:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def signed_grant(people, submit, step_up, ssh_key: Path, duration="30m"):
    request = submit(
        people.alice, slug="vault-ssh", duration=duration,
        ssh_public_key=ssh_key.with_suffix(".pub").read_text(),
    )  # fmt: skip
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.id, approver=people.bob, info=WEB)
    grant = Grant.objects.get(request=request)
    lifecycle.grant_activate(grant_id=grant.id)
    grant.refresh_from_db()
    step_up(people.alice)
    credential = lifecycle.grant_reveal(grant_id=grant.id, user=people.alice, info=WEB)
    return grant, credential


def test_the_certificate_carries_the_principals_and_the_grant_window(
    vault, people, submit, step_up, ssh_key
):
    grant, credential = signed_grant(people, submit, step_up, ssh_key)
    cert = ssh_key.parent / "id_ed25519-cert.pub"
    cert.write_text(credential["certificate"] + "\n")
    listing = subprocess.run(
        ["ssh-keygen", "-L", "-f", str(cert)], capture_output=True, text=True, check=True
    ).stdout
    assert "Type: ssh-ed25519-cert-v01@openssh.com user certificate" in listing
    assert f"Serial: {grant.handle['serial']}" in listing
    principals = listing.split("Principals:")[1].split("Critical Options:")[0].split()
    assert principals == ["ubuntu"]
    valid_to = listing.split("Valid: from ")[1].split(" to ")[1].split()[0]
    # ssh-keygen prints local time to the second; compared as a moment, not as text
    # (a minute could turn between the two).
    ends = datetime.fromisoformat(valid_to).astimezone()
    assert grant.expires_at - timedelta(seconds=2) <= ends <= grant.expires_at


def test_early_revoke_puts_the_serial_in_a_krl_that_rejects_the_certificate(
    vault, people, submit, step_up, ssh_key, capsys
):
    grant, credential = signed_grant(people, submit, step_up, ssh_key)
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=WEB)
    lifecycle.grant_revoke_execute(grant_id=grant.id)
    grant.refresh_from_db()
    assert grant.status == "revoked"
    # Honest: the certificate is still valid by itself until its end, and the trail says so.
    assert get_provider("vault.ssh").check(grant.handle)
    event = AuditEvent.objects.get(action="grant.revoked", target_id=str(grant.id))
    assert event.data["certificate_still_valid_until"] == grant.handle["valid_before"]

    call_command("ssh_revoked_serials")
    spec = ssh_key.parent / "krl-spec.txt"
    spec.write_text(capsys.readouterr().out)
    assert f"serial: {grant.handle['serial']}" in spec.read_text()
    ca = ssh_key.parent / "ca.pub"
    ca.write_text(vault.client().adapter.get("/v1/ssh/public_key", json=False).text)
    krl = ssh_key.parent / "revoked.krl"
    subprocess.run(
        ["ssh-keygen", "-k", "-f", str(krl), "-s", str(ca), str(spec)],
        check=True, capture_output=True,
    )  # fmt: skip
    cert = ssh_key.parent / "id_ed25519-cert.pub"
    cert.write_text(credential["certificate"] + "\n")
    query = subprocess.run(
        ["ssh-keygen", "-Q", "-f", str(krl), str(cert)], capture_output=True, text=True
    )
    assert query.returncode != 0 and "REVOKED" in query.stdout


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "not an SSH public key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn...", "that is a private key"),
        ("ssh-ed25519 AAAA-not-base64", "damaged"),
        ("ssh-dss AAAAB3NzaC1kc3M", "not an SSH public key"),
    ],
)
def test_bad_keys_are_refused_with_the_reason(people, submit, key, message):
    with pytest.raises(lifecycle.InvalidRequest) as caught:
        submit(people.alice, slug="vault-ssh", ssh_public_key=key)
    assert message in caught.value.fields["ssh_public_key"]


def test_a_key_for_a_profile_that_signs_nothing_is_refused(people, submit, ssh_key):
    with pytest.raises(lifecycle.InvalidRequest) as caught:
        submit(people.alice, ssh_public_key=ssh_key.with_suffix(".pub").read_text())
    assert "takes no SSH key" in caught.value.fields["ssh_public_key"]
