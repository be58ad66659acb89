"""A persistent database connection that PostgreSQL dropped (a restart, a failover, an idle
timeout) is replaced before the next request uses it: no request fails, no answer is lost or
recorded twice. Against the deployed server (gunicorn, DEBUG=0): Django's test client turns
off the per-request connection checks that this is about."""

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest
import requests
from django.db import connection

from annotation.models import Annotation
from tests.factories import make_round
from tests.support.celery_process import database_url, process_env

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="kills PostgreSQL backends"),
]


@pytest.fixture
def server(tmp_path) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = process_env(DEBUG="0", PLAIN_HTTP="1", ALLOWED_HOSTS="127.0.0.1",
                      SECRET_KEY="connections-test-" + "k" * 50, CROWD_RATE_LIMITS="0")  # fmt: skip
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "evalplatform.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", "1", "--threads", "2", "--worker-class", "gthread"],
        env=env, stdout=log, stderr=log,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=5)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline and process.poll() is None, "no server"
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def kill_the_servers_connections() -> int:
    """Terminate every backend of the test database but this test's own."""
    with psycopg.connect(database_url(), autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid NOT IN (pg_backend_pid(), %s)",
            [connection.connection.info.backend_pid],
        ).fetchone()
    return killed[0]


def test_a_dropped_connection_fails_no_crowd_request_and_loses_no_answer(server):
    round_ = make_round(prompts=8, items_per_worker=8)
    browser = requests.Session()
    landing = f"{server}/c/{round_.crowd_token}/"
    browser.get(landing)
    page = browser.post(landing, {"worker_id": "w", "csrfmiddlewaretoken":
                                  browser.cookies["csrftoken"]})  # fmt: skip
    work_url = page.url
    headers = {"HX-Request": "true", "X-CSRFToken": browser.cookies["csrftoken"]}
    killed = []
    for _ in range(6):
        killed.append(kill_the_servers_connections())
        token = re.search(r'name="assignment" value="([^"]+)"', page.text).group(1)
        page = browser.post(work_url + "answer/", {"assignment": token, "choice": "A"},
                            headers=headers)  # fmt: skip
        assert page.status_code == 200, page.text[:500]
        assert "Answer A" in page.text
    assert all(killed)  # the server held a connection each time, and lost it
    assert Annotation.objects.count() == 6
