"""`python manage.py ...` run from a checkout finds the keys `make` generated in
var/ without exporting anything (the README's commands run as written under
`make run`); an environment that names a key keeps its own."""

import os
import subprocess
import sys
from pathlib import Path

import manage

CHECKOUT = Path(manage.__file__).resolve().parent


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_FILE")}
    for name in (*manage.LOCAL_KEYS, "DATABASE_URL"):  # `make run`'s embedded defaults
        clean.pop(name, None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env={**clean, **env},
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_commands_find_the_local_keys():
    checked = run("check")
    assert checked.returncode == 0, checked.stderr
    assert "Traceback" not in checked.stderr


def test_a_named_key_wins(tmp_path):
    missing = tmp_path / "nope"
    checked = run("check", DJANGO_SECRET_KEY_FILE=str(missing))
    assert checked.returncode != 0
    assert f"DJANGO_SECRET_KEY_FILE={missing} cannot be read" in checked.stderr


def test_a_deployment_never_picks_up_the_checkouts_keys():
    checked = run("check", DATABASE_URL="postgres://postgres@127.0.0.1:5432/airlock")
    assert checked.returncode != 0 and "Set DJANGO_SECRET_KEY" in checked.stderr
