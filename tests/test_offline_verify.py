"""`airlock-verify` checks an export or an evidence pack on a machine with none of
Airlock's secrets, settings or database: a fresh process with only the files and
the public key."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from django.core.management import call_command

SECRETS = ("DJANGO_SECRET_KEY", "AIRLOCK_ENCRYPTION_KEY", "AIRLOCK_EXPORT_HMAC_KEY",
           "AIRLOCK_AUDIT_SIGNING_KEY")  # fmt: skip


def stranger_runs(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """airlock-verify in a fresh process, away from the checkout, knowing no secret."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO", "DATABASE", "CELERY", "AIRLOCK"))
    }
    command = shutil.which("airlock-verify", path=str(Path(sys.executable).parent))
    return subprocess.run(
        [command, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_an_export_and_a_pack_verify_with_the_public_key_alone(people, submit, tmp_path):
    submit(people.alice)
    export = tmp_path / "audit.jsonl"
    call_command("export_audit", "--format", "jsonl", "--output", str(export))
    call_command("evidence_pack", "--since", "2000-01-01", "--output", str(tmp_path / "pack.zip"))
    call_command("audit_keys", "--output", str(tmp_path / "keyring.json"))
    for name in SECRETS:
        assert name not in stranger_runs("--help", cwd=tmp_path).stdout

    checked = stranger_runs("--export", "audit.jsonl", "--public-key", "keyring.json", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "export audit.jsonl intact" in checked.stdout
    packed = stranger_runs("--pack", "pack.zip", "--public-key", "keyring.json", cwd=tmp_path)
    assert packed.returncode == 0, packed.stderr
    assert "pack pack.zip verified" in packed.stdout

    export.write_text(export.read_text().replace("alice", "mallory", 1))
    broken = stranger_runs("--export", "audit.jsonl", "--public-key", "keyring.json", cwd=tmp_path)
    assert broken.returncode == 1 and "changed after export" in broken.stderr
