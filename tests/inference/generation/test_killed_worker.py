"""A generation worker killed mid-run: the task is taken over once the dead worker's heartbeat
is stale, and makes only the responses still missing. Real worker processes on Redis, a real
local OpenAI-compatible server."""

import os
import signal
import time

import pytest
from django.utils import timezone

from annotation.models import Item, LanguageModel, Response
from annotation.services.rounds import round_create
from inference.generation.services import generation_launch
from inference.models import GenerationRun, GenerationTask
from tests.factories import make_model_with_responses, make_project, make_prompt_set
from tests.support.celery_process import CeleryProcess, broker_queues_clear, redis_broker_url
from tests.support.openai_completions_server import OpenAICompletionsServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

PROMPTS = 30
STALE_SECONDS = 6
FAST_RECOVERY = {"RUN_STALE_SECONDS": str(STALE_SECONDS)}
SWEEPING = {**FAST_RECOVERY, "RUN_SWEEP_SECONDS": "1", "RUN_REQUEUE_AFTER_SECONDS": "2"}


@pytest.fixture
def server(settings):
    redis_broker_url()
    broker_queues_clear()
    settings.RUN_STALE_SECONDS = STALE_SECONDS
    with OpenAICompletionsServer(latency=0.2) as running:
        yield running


def launch(server: OpenAICompletionsServer) -> GenerationRun:
    project = make_project("lab")
    prompt_set = make_prompt_set(project, PROMPTS)
    candidate = LanguageModel.objects.create(
        project=project,
        name="gpt-4",
        backend="openai",
        config={
            "model": "gpt-4",
            "base_url": server.url,
            "api_key_env": "TEST_API_KEY",
            "concurrency": 2,
        },
    )
    round_ = round_create(
        project=project,
        prompt_set=prompt_set,
        candidate=candidate,
        baselines=[make_model_with_responses(project, prompt_set, "alpaca-65b")],
        shared_items=0,
        seed=7,
    )
    return generation_launch(round_=round_)


def generating(task: GenerationTask) -> bool:
    fresh = task.heartbeat_at and (timezone.now() - task.heartbeat_at).total_seconds() < 1
    return bool(fresh) and task.status == GenerationRun.Status.RUNNING and task.done >= 6


def taken_over_from(worker: str):
    return lambda task: task.worker not in (worker, "") and not task.worker.startswith("queued:")


def finished(run: GenerationRun) -> bool:
    return not run.is_active


def assert_generated_once_each(run: GenerationRun, server: OpenAICompletionsServer) -> int:
    assert run.status == GenerationRun.Status.DONE, [t.message for t in run.tasks.all()]
    assert Response.objects.filter(model__name="gpt-4").count() == PROMPTS
    assert Item.objects.filter(round=run.round).count() == PROMPTS
    [task] = run.tasks.all()
    assert (task.done, task.needed, task.failed) == (PROMPTS, PROMPTS, 0)
    repeated = len(server.log) - PROMPTS
    # Only the requests in flight when the worker died are made twice.
    assert 0 <= repeated <= 4
    return repeated


def test_a_task_whose_whole_worker_was_killed_is_re_queued_and_taken_over(tmp_path, server):
    # Like the GPU worker: the solo pool runs the task in the worker process itself.
    with CeleryProcess(tmp_path, queues="api", pool="solo", name="first", env=FAST_RECOVERY) as w:
        run = launch(server)
        [task] = run.tasks.all()
        task = wait_until(task, generating, seconds=30)
        # Nothing acknowledges its message: Redis keeps it for the visibility timeout (12 h).
        w.kill()
    killed_at, first_worker, sent_before = time.monotonic(), task.worker, len(server.log)
    with CeleryProcess(
        tmp_path, queues="api,default", name="second", beat=True, env=SWEEPING
    ) as second:
        task = wait_until(task, taken_over_from(first_worker), seconds=30)
        taken_after = time.monotonic() - killed_at
        run = wait_until(run, finished, seconds=60)
        done_after = time.monotonic() - killed_at
        log = second.log()

    assert "re-queued 0 judge runs, 1 generation tasks" in log
    repeated = assert_generated_once_each(run, server)
    print(
        f"\ngeneration worker killed after {sent_before} of {PROMPTS} requests: taken over after "
        f"{taken_after:.1f}s, done after {done_after:.1f}s, {repeated} requests repeated"
    )


def test_a_task_whose_pool_process_was_killed_waits_for_the_stale_heartbeat(tmp_path, server):
    with CeleryProcess(tmp_path, queues="api", env=FAST_RECOVERY) as worker:
        run = launch(server)
        [task] = run.tasks.all()
        task = wait_until(task, generating, seconds=30)
        first_worker = task.worker
        os.kill(int(first_worker.split(":")[1]), signal.SIGKILL)
        killed_at, sent_before = time.monotonic(), len(server.log)
        task = wait_until(task, taken_over_from(first_worker), seconds=30)
        taken_after = time.monotonic() - killed_at
        run = wait_until(run, finished, seconds=60)
        done_after = time.monotonic() - killed_at
        log = worker.log()

    assert "Retry in" in log and "held by an earlier delivery" in log
    assert taken_after >= STALE_SECONDS - 1.5
    repeated = assert_generated_once_each(run, server)
    print(
        f"\ngeneration pool process killed after {sent_before} of {PROMPTS} requests: taken "
        f"over after {taken_after:.1f}s, done after {done_after:.1f}s, {repeated} repeated"
    )
