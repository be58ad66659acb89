"""Redis restarted under a running judge: a real worker process (`celery -A evalplatform worker`,
prefork as docker-compose runs it) on a redis-server of the test's own, judging against the
scripted OpenAI server, while that Redis is stopped and started again, empty.

The worker survives and consumes again, the run finishes (its rate limiter on the worker's own
budgets meanwhile), and every reply the server sent is stored, none asked twice.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from inference.models import JudgeCall, JudgeRun
from tests.factories import make_project, make_round
from tests.support.judging import API_KEY, KEY_ENV, make_judge, prefers_candidate
from tests.support.openai_server import ScriptedOpenAI
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the worker process must share the test database (PostgreSQL)",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FINISHED = (JudgeRun.Status.DONE, JudgeRun.Status.FAILED)
OUTAGE_SECONDS = 3.0


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_env(redis: RedisServer) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": redis.url(),
        "API_KEYS": "EVALPLATFORM_TEST_*=*",
        KEY_ENV: API_KEY,
        "PYTHONUNBUFFERED": "1",
    }


def launch(round_id: int, env: dict[str, str]) -> None:
    """The way an operator queues a judge: the command, which sends the task to this Redis."""
    subprocess.run(
        [BIN / "python", "manage.py", "judge_round", str(round_id), "--judge", "gpt-4"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def wait_for(condition, *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {seconds}s")
        time.sleep(0.05)


@pytest.fixture
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture
def worker(redis_server, tmp_path):
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                *(BIN / "celery", "-A", "evalplatform", "worker", "--pool", "prefork"),
                *("--concurrency", "1", "--queues", "default,api", "--loglevel", "INFO"),
                *("--hostname", f"outage-{redis_server.port}@%h"),
            ],
            cwd=ROOT,
            env=worker_env(redis_server),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    process.log = log  # type: ignore[attr-defined]
    yield process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_worker_survives_a_redis_restart_mid_run_and_loses_no_paid_reply(redis_server, worker):
    round_ = make_round(prompts=24, project=make_project("lab"))
    second_round = make_round(prompts=2, project=make_project("lab-2"))
    env = worker_env(redis_server)
    # Slow enough that the run spans the outage: 48 calls, two at a time, 0.25 s each.
    with ScriptedOpenAI(responder=prefers_candidate, latency=0.25) as server:
        for judged in (round_, second_round):
            make_judge(judged, server, max_concurrency=2, rpm_limit=6000, tpm_limit=0)
        launch(round_.pk, env)
        wait_for(lambda: len(server.statuses) >= 8, seconds=40, what="judging")

        redis_server.stop()
        asked_before_outage = len(server.statuses)
        time.sleep(OUTAGE_SECONDS)
        assert worker.poll() is None, worker.log.read_text()[-3000:]
        redis_server.start()

        run = wait_until(
            JudgeRun.objects.get(round=round_), lambda r: r.status in FINISHED, seconds=40
        )
        assert run.status == JudgeRun.Status.DONE, run.message
        assert len(server.statuses) > asked_before_outage + 4, "judged on during the outage"

        # The worker consumes again after the restart (kombu < 5.4 stopped: celery/celery#9054).
        launch(second_round.pk, env)
        second = wait_until(
            JudgeRun.objects.get(round=second_round),
            lambda r: r.status in FINISHED,
            seconds=30,
        )
        assert second.status == JudgeRun.Status.DONE, second.message
        assert worker.poll() is None, worker.log.read_text()[-3000:]
        answered = [request.body["messages"] for request, status in server.answered]
        statuses = list(server.statuses)

    stored = JudgeCall.objects.filter(run__in=[run, second])
    assert {call.status for call in stored} == {JudgeCall.Status.DONE}
    # The second round asks what the first did: answered from the judge's cache, not paid.
    paid = [call for call in stored if not call.cached]
    assert statuses == [200] * len(paid) == [200] * 48
    assert sorted(map(str, answered)) == sorted(str(call.request["messages"]) for call in paid)
    log = worker.log.read_text()
    assert log.count("Rate limits fall back to this worker's own budgets") == 1, log[-3000:]
    assert "Unrecoverable error" not in log
