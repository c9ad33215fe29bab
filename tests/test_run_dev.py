"""`make run`'s banner (URL, who is who, the password file) comes last, after the
web server's and the worker's own start-up lines, so it does not scroll away.
Runs scripts/run-dev.sh on SQLite and the filesystem broker in a temporary var/,
without the sandbox, on a free port."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import airlock.settings

CHECKOUT = Path(airlock.settings.__file__).parent.parent
BANNER = "Airlock is running"
WORKER_READY = " ready."
WEB_READY = "Quit the server with CONTROL-C."


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bin_without_sandbox(folder: Path) -> Path:
    """python and celery of this environment only: no bao or moto_server, no sandbox."""
    folder.mkdir()
    for name, target in (
        ("python", sys.executable),
        ("celery", Path(sys.executable).parent / "celery"),
    ):
        wrapper = folder / name
        wrapper.write_text(f'#!/bin/sh\nexec "{target}" "$@"\n')
        wrapper.chmod(0o755)
    return folder


@pytest.mark.slow
def test_the_banner_comes_after_the_services_start_up_output(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(
        BIN=str(bin_without_sandbox(tmp_path / "bin")),
        AIRLOCK_VAR_DIR=str(tmp_path / "var"),
        AIRLOCK_ADDR=f"127.0.0.1:{free_port()}",
        DJANGO_DEBUG="1",
    )
    run = subprocess.Popen(
        ["scripts/run-dev.sh"], cwd=CHECKOUT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = run.stdout.readline()
            if not line:
                break
            lines.append(line)
            seen = "".join(lines)
            if BANNER in seen and WORKER_READY in seen and WEB_READY in seen:
                break
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(30)
    output = "".join(lines)
    assert BANNER in output, output
    banner_at = output.index(BANNER)
    assert output.index(WEB_READY) < banner_at, output
    assert output.index(WORKER_READY) < banner_at, output
    assert not (CHECKOUT / "control").exists()
