"""Runs whose task message was lost are found and sent again (`inference.runs`, the sweeper in
`inference.tasks`), and a launch with the broker down answers a clear 503 at once.

Real Redis, real worker processes; the broker that is down is a closed local port.
"""

import subprocess
import sys
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from annotation.models import Annotation
from inference.generation.services import generation_tasks_requeue_lost
from inference.judge.services import judge_run_start, judge_runs_requeue_lost
from inference.models import GenerationRun, JudgeCall, JudgeRun
from inference.runs import task_ids_waiting, task_token
from tests.factories import make_project, make_round, make_user
from tests.inference.generation.test_killed_worker import launch
from tests.support.celery_process import (
    CeleryProcess,
    broker_queues_clear,
    broker_unreachable,
    closed_port_url,
    process_env,
    redis_broker_url,
)
from tests.support.judging import KEY_ENV, make_judge, prefers_candidate
from tests.support.openai_completions_server import OpenAICompletionsServer
from tests.support.openai_server import ScriptedOpenAI
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

SWEEPING = {"RUN_STALE_SECONDS": "6", "RUN_SWEEP_SECONDS": "1", "RUN_REQUEUE_AFTER_SECONDS": "2"}
# Connection refused, one retry: well under this.
FAILS_WITHIN_SECONDS = 3.0


@pytest.fixture(autouse=True)
def _clean_broker():
    redis_broker_url()
    broker_queues_clear()


@pytest.fixture
def researcher(client):
    user = make_user()
    client.force_login(user)
    return user


def waiting_on(queue: str) -> set[str]:
    waiting = task_ids_waiting([queue])
    assert waiting is not None  # Redis can be asked.
    return waiting


def queued_token(row) -> str:
    row.refresh_from_db()
    assert row.worker.startswith("queued:"), row.worker
    return row.worker.removeprefix("queued:")


def test_a_judge_launched_while_the_broker_is_down_answers_503_and_starts_once_it_is_back(
    client, researcher, tmp_path
):
    round_ = make_round(prompts=5, project=make_project("lab", researcher))
    with ScriptedOpenAI(responder=prefers_candidate) as server:
        judge = make_judge(round_, server)
        url = reverse("api-round-judges", args=[round_.pk])
        # The first request of the process loads the URLs and the API: not what is timed.
        assert client.get(url).status_code == 200
        with broker_unreachable():
            started = time.monotonic()
            answer = client.post(url, {"judge": judge.name}, content_type="application/json")
            took = time.monotonic() - started
        assert answer.status_code == 503
        assert answer["Content-Type"] == "application/json"
        assert "task queue is unreachable" in answer.json()["detail"]
        assert took < FAILS_WITHIN_SECONDS
        # Committed as queued, never sent: what the sweeper looks for.
        run = JudgeRun.objects.get()
        assert run.status == JudgeRun.Status.QUEUED
        assert queued_token(run) not in waiting_on("api")

        with CeleryProcess(tmp_path, queues="api,default", beat=True, env=SWEEPING) as worker:
            run = wait_until(run, lambda run: run.status == JudgeRun.Status.DONE, seconds=60)
            log = worker.log()
    assert "re-queued 1 judge runs" in log
    assert JudgeCall.objects.filter(run=run, status=JudgeCall.Status.DONE).count() == 10
    assert len(server.requests) == 10
    assert Annotation.objects.filter(annotator=judge.annotator).count() == 5
    print(f"\njudge launch with the broker down: 503 in {took:.2f}s")


def test_a_generation_launched_while_the_broker_is_down_is_sent_by_the_next_launch(
    client, researcher
):
    with OpenAICompletionsServer() as server:
        run = launch(server)
    run.round.project.members.add(researcher)
    url = reverse("api-round-generation", args=[run.round_id])
    # The launch above was sent; this one is lost.
    broker_queues_clear()
    GenerationRun.objects.all().delete()
    with broker_unreachable():
        started = time.monotonic()
        answer = client.post(url, {}, content_type="application/json")
        took = time.monotonic() - started
    assert answer.status_code == 503 and "unreachable" in answer.json()["detail"]
    assert took < FAILS_WITHIN_SECONDS
    [task] = GenerationRun.objects.get().tasks.all()
    token = queued_token(task)
    assert token not in waiting_on("api")

    assert client.post(url, {}, content_type="application/json").status_code == 202
    [waiting] = waiting_on("api")
    assert waiting == queued_token(task) != token
    print(f"\ngeneration launch with the broker down: 503 in {took:.2f}s")


def test_a_generation_task_lost_by_a_redis_restart_is_sent_again_by_the_sweeper(tmp_path):
    with OpenAICompletionsServer() as server:
        run = launch(server)
        # What a Redis without persistence has after a restart: none of the queued messages.
        redis.Redis.from_url(redis_broker_url()).delete("api")
        with CeleryProcess(tmp_path, queues="api,default", beat=True, env=SWEEPING) as worker:
            run = wait_until(run, lambda run: not run.is_active, seconds=60)
            log = worker.log()
        assert len(server.log) == 30
    assert run.status == GenerationRun.Status.DONE
    assert "1 generation tasks" in log


def test_the_sweeper_leaves_alone_runs_whose_message_is_waiting_and_live_runs(settings):
    settings.RUN_REQUEUE_AFTER_SECONDS = 0
    waiting_round = make_round(prompts=2, project=make_project("waiting"))
    live_round = make_round(prompts=2, project=make_project("live"))
    with ScriptedOpenAI() as server:
        waiting, _ = judge_run_start(round_=waiting_round, judge=make_judge(waiting_round, server))
        live, _ = judge_run_start(round_=live_round, judge=make_judge(live_round, server))
    JudgeRun.objects.filter(pk=live.pk).update(
        status=JudgeRun.Status.RUNNING, worker="cpu-1:7:alive", heartbeat_at=timezone.now()
    )
    JudgeRun.objects.filter(pk=waiting.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    assert judge_runs_requeue_lost() == 0
    assert generation_tasks_requeue_lost() == 0
    assert redis.Redis.from_url(redis_broker_url()).llen("api") == 2
    live.refresh_from_db()
    assert (live.status, live.worker) == (JudgeRun.Status.RUNNING, "cpu-1:7:alive")


def test_a_stale_run_is_re_queued_once_however_many_sweepers_run(settings):
    round_ = make_round(prompts=2)
    with ScriptedOpenAI() as server:
        run, _ = judge_run_start(round_=round_, judge=make_judge(round_, server))
    broker_queues_clear()
    dead = timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS + 1)
    JudgeRun.objects.filter(pk=run.pk).update(
        status=JudgeRun.Status.RUNNING, worker="cpu-1:7:dead", heartbeat_at=dead
    )

    assert [judge_runs_requeue_lost(), judge_runs_requeue_lost()] == [1, 0]
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.QUEUED
    assert run.message == "Its worker stopped; queued again."
    assert waiting_on("api") == {task_token(queued_token(run))}


def test_a_judge_started_from_the_page_while_the_broker_is_down_says_so(client, researcher):
    round_ = make_round(prompts=2, project=make_project("lab", researcher))
    with ScriptedOpenAI() as server:
        judge = make_judge(round_, server)
        with broker_unreachable():
            page = client.post(
                reverse("judge-round", args=[round_.pk]),
                {"judge": judge.pk, "mode": "pairwise"},
                follow=True,
            )
    assert page.status_code == 200
    assert "task queue is unreachable" in page.content.decode()
    assert JudgeRun.objects.get().status == JudgeRun.Status.QUEUED


@pytest.mark.parametrize(
    "command",
    [
        ["judge_round", "--judge", "gpt-4", "--base-url", "http://127.0.0.1:9/v1"],
        ["launch_round"],
    ],
    ids=["judge_round", "launch_round"],
)
def test_the_commands_say_the_queue_is_down_instead_of_queued(command):
    with OpenAICompletionsServer() as server:
        round_ = launch(server).round
    GenerationRun.objects.all().delete()
    args = [*command[:1], str(round_.pk), *command[1:]]
    if command[0] == "judge_round":
        args += ["--api-key-env", KEY_ENV]
    env = process_env(CELERY_BROKER_URL=closed_port_url())
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        env=env,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - started
    assert done.returncode == 1
    assert "task queue is unreachable" in done.stderr
    assert "queued" not in done.stdout.lower()
    print(f"\n{command[0]} with the broker down: exit 1 after {took:.1f}s (with start-up)")
