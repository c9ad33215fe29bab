"""The moving parts the fault suite breaks: a Redis of its own (so it can be
restarted), Celery worker processes (so they can be killed with SIGKILL) and
Celery beat, all pointed at the test database.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path

import redis
from django.db import connection

from tests.support.pg_target import _free_port

# Workers connect with this name, so the suite can cut exactly their
# connections, which is what a restart of the database does to them.
WORKER_APPLICATION_NAME = "airlock-chaos-worker"


def airlock_database_url(application_name: str = "", user: str = "") -> str:
    """Airlock's (test) database, for another process or connection (as `user`,
    by default the suite's own role)."""
    db = connection.settings_dict
    url = f"postgresql://{user or db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return f"{url}?application_name={application_name}" if application_name else url


class RedisServer:
    """redis-server on a free port, keeping nothing on disk (like the machine's)."""

    def __init__(self):
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """Everything queued is lost: Redis keeps nothing on disk here."""
        self.stop()
        self.start()


class CeleryProcesses:
    """One worker (prefork) and one beat, as separate processes like in production."""

    def __init__(self, broker_url: str, env: dict[str, str]):
        self.dir = Path(tempfile.mkdtemp(prefix="airlock-chaos-"))
        self.env = {
            **os.environ,
            "DATABASE_URL": airlock_database_url(WORKER_APPLICATION_NAME),
            "CELERY_BROKER_URL": broker_url,
            "AIRLOCK_LOG_LEVEL": "WARNING",
            **env,
        }
        self.worker: subprocess.Popen | None = None
        self.beat: subprocess.Popen | None = None
        self.kills = 0
        self.crashes = 0  # the worker exited by itself, and was restarted

    def _spawn(self, *args: str, log: str) -> subprocess.Popen:
        with open(self.dir / log, "ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "airlock.celery", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill the pool with it
            )

    def start_worker(self) -> None:
        self.worker = self._spawn(
            "worker", "--pool=prefork", "--concurrency=3", "--loglevel=WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            log="worker.log",
        )  # fmt: skip

    def kill_worker(self) -> None:
        """SIGKILL the worker and its pool: no shutdown, no acknowledgement, no cleanup."""
        assert self.worker is not None
        with suppress(ProcessLookupError):  # it had exited already
            os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(timeout=10)
        self.kills += 1

    def supervise(self) -> bool:
        """Restart a worker that exited by itself, as systemd's Restart=always would."""
        assert self.worker is not None
        if self.worker.poll() is None:
            return False
        with suppress(ProcessLookupError):
            os.killpg(self.worker.pid, signal.SIGKILL)  # what is left of its pool
        self.crashes += 1
        self.start_worker()
        return True

    def start_beat(self) -> None:
        self.beat = self._spawn(
            "beat", "--loglevel=WARNING", f"--schedule={self.dir / 'beat-schedule'}",
            log="beat.log",
        )  # fmt: skip

    def stop(self) -> None:
        for process in (self.worker, self.beat):
            if process and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.dir.glob("*.log"))
        )
