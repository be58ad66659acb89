"""Real Celery worker processes for the fault tests: started with `celery -A evalplatform
worker` on the test database and the Redis broker, killed with SIGKILL like a lost machine.

    with CeleryProcess(tmp_path, queues="api", env={"RUN_STALE_SECONDS": "3"}) as worker:
        ...
        worker.kill()  # the whole worker: main process and pool children
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from tests.support.judging import API_KEY, KEY_ENV

READY = "ready."


def redis_broker_url() -> str:
    """The Redis broker of this test session; the fault tests need one (re-delivery, loss)."""
    url = str(settings.CELERY_BROKER_URL)
    if not url.startswith(("redis://", "rediss://")):
        pytest.skip("fault tests need a Redis broker: set CELERY_BROKER_URL=redis://...")
    return url


def broker_queues_clear(queues: tuple[str, ...] = ("api", "default")) -> None:
    """Drop what earlier tests left on the broker: the queues and unacknowledged messages."""
    import redis

    client = redis.Redis.from_url(redis_broker_url())
    client.delete(*queues, "unacked", "unacked_index", "unacked_mutex")


def closed_port_url() -> str:
    """A Redis URL on a local port nothing listens on: every connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/1"


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    """The environment of a worker or command process: the test database and broker, the
    judge's test key allowed to the local servers."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "evalplatform.settings",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": redis_broker_url(),
        "API_KEYS": "EVALPLATFORM_TEST_*=*;TEST_API_KEY=*",
        KEY_ENV: API_KEY,
        "TEST_API_KEY": "sk-test",
        "LOG_LEVEL": "INFO",
        **extra,
    }


class CeleryProcess:
    def __init__(
        self,
        folder: Path,
        *,
        queues: str,
        name: str = "faults",
        pool: str = "prefork",
        beat: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.log_path = folder / f"{name}.log"
        self.command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "evalplatform",
            "worker",
            f"--queues={queues}",
            f"--pool={pool}",
            "--concurrency=1",
            f"--hostname={name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ]
        if beat:
            self.command += ["--beat", f"--schedule={folder / f'{name}-beat'}"]
        self.env = process_env(**(env or {}))
        self.process: subprocess.Popen[Any] | None = None

    def __enter__(self) -> "CeleryProcess":
        log = self.log_path.open("w")
        # A session of its own: kill() reaches the pool children too.
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=settings.BASE_DIR,
        )
        deadline = time.monotonic() + 60
        while READY not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"celery worker did not start:\n{self.log()}")
            time.sleep(0.1)
        return self

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL to the worker and its pool: nothing is acknowledged or cleaned up."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@contextmanager
def broker_unreachable() -> Iterator[str]:
    """This process's Celery app sends to a closed local port until the block ends: a real
    connection refused on every publish. Yields the URL."""
    from evalplatform.celery import app as celery_app

    app: Any = celery_app
    url = closed_port_url()
    keys = ("broker_url", "broker_read_url", "broker_write_url")
    saved = {key: app.conf.get(key) for key in keys}

    def connect_anew() -> None:
        # Connections and producers are pooled per URL once made: start both afresh.
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.update(dict.fromkeys(keys, url))
    connect_anew()
    try:
        yield url
    finally:
        app.conf.update(saved)
        connect_anew()
