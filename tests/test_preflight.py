"""The suite and the app fail fast with a clear message when set up wrong."""

import os
import subprocess
import sys


def run(args, env_changes):
    env = {**os.environ, **env_changes}
    return subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=60, cwd=os.getcwd()
    )


def test_suite_stops_with_a_clear_message_when_postgresql_is_down():
    result = run(
        [sys.executable, "-m", "pytest", "tests/test_durations.py", "-q"],
        {"DATABASE_URL": "postgres://postgres@127.0.0.1:1/airlock"},
    )
    assert result.returncode == 3
    assert "PostgreSQL is not reachable at 127.0.0.1:1 (DATABASE_URL)" in result.stdout


def test_suite_stops_with_a_clear_message_when_redis_is_down():
    result = run(
        [sys.executable, "-m", "pytest", "tests/test_durations.py", "-q"],
        {"CELERY_BROKER_URL": "redis://127.0.0.1:1/0"},
    )
    assert result.returncode == 3
    assert "Redis is not reachable at 127.0.0.1:1" in result.stdout


def test_missing_secret_key_is_named():
    env = {"DJANGO_SECRET_KEY": "", "DJANGO_SECRET_KEY_FILE": ""}
    result = run([sys.executable, "manage.py", "check"], env)
    assert result.returncode != 0
    assert "Set DJANGO_SECRET_KEY or DJANGO_SECRET_KEY_FILE" in result.stderr
