"""A judge worker killed mid-run: its task comes back, waits for the dead worker's heartbeat to
go stale and takes the run over. Real worker processes on Redis, a real local OpenAI server."""

import os
import signal
import time

import pytest
from django.utils import timezone

from annotation.models import Annotation
from inference.judge.services import judge_run_start
from inference.models import JudgeCall, JudgeRun
from tests.factories import make_round
from tests.support.celery_process import CeleryProcess, broker_queues_clear, redis_broker_url
from tests.support.judging import make_judge, prefers_candidate
from tests.support.openai_server import ScriptedOpenAI
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

# Short, for the test; long enough that a worker slowed down by a busy machine is not taken
# for dead.
STALE_SECONDS = 6
FAST_RECOVERY = {"RUN_STALE_SECONDS": str(STALE_SECONDS)}


def done_calls(run: JudgeRun) -> int:
    return JudgeCall.objects.filter(run=run, status=JudgeCall.Status.DONE).count()


def taken_over_from(worker: str):
    return lambda run: run.worker not in (worker, "") and not run.worker.startswith("queued:")


def beating_after_some_calls(run: JudgeRun) -> bool:
    fresh = run.heartbeat_at and (timezone.now() - run.heartbeat_at).total_seconds() < 1
    return bool(fresh) and done_calls(run) >= 6


def test_a_run_whose_pool_process_was_killed_is_taken_over_once_its_heartbeat_is_stale(
    tmp_path, settings
):
    redis_broker_url()
    broker_queues_clear()
    settings.RUN_STALE_SECONDS = STALE_SECONDS
    round_ = make_round(prompts=20)
    with (
        ScriptedOpenAI(responder=prefers_candidate, latency=0.2) as server,
        CeleryProcess(tmp_path, queues="api", env=FAST_RECOVERY) as worker,
    ):
        judge = make_judge(round_, server, max_concurrency=2)
        run, queued = judge_run_start(round_=round_, judge=judge)
        assert queued
        run = wait_until(run, beating_after_some_calls, seconds=30)
        first_worker = run.worker
        os.kill(int(first_worker.split(":")[1]), signal.SIGKILL)
        killed_at, sent_before = time.monotonic(), len(server.requests)
        run = wait_until(run, taken_over_from(first_worker), seconds=30)
        taken_after = time.monotonic() - killed_at
        run = wait_until(run, lambda run: run.status == JudgeRun.Status.DONE, seconds=60)
        done_after = time.monotonic() - killed_at
        log = worker.log()

    assert run.message == ""
    # The pool process's task came back at once, found the fresh heartbeat and waited.
    assert "Retry in" in log and "held by an earlier delivery" in log
    assert taken_after >= STALE_SECONDS - 1.5
    assert done_calls(run) == 40
    assert Annotation.objects.filter(annotator=judge.annotator).count() == 20
    # Only the calls in flight when the process died are paid twice.
    repeated = len(server.requests) - 40
    assert 0 <= repeated <= 4
    print(
        f"\njudge pool process killed after {sent_before} of 40 requests: taken over after "
        f"{taken_after:.1f}s, done after {done_after:.1f}s, {repeated} calls repeated"
    )


def test_a_run_whose_whole_worker_was_killed_is_re_queued_by_the_sweeper(tmp_path, settings):
    redis_broker_url()
    broker_queues_clear()
    settings.RUN_STALE_SECONDS = STALE_SECONDS
    round_ = make_round(prompts=20)
    sweeping = {**FAST_RECOVERY, "RUN_SWEEP_SECONDS": "1", "RUN_REQUEUE_AFTER_SECONDS": "2"}
    with ScriptedOpenAI(responder=prefers_candidate, latency=0.2) as server:
        judge = make_judge(round_, server, max_concurrency=2)
        with CeleryProcess(tmp_path, queues="api", name="first", env=FAST_RECOVERY) as first:
            run, _ = judge_run_start(round_=round_, judge=judge)
            run = wait_until(run, beating_after_some_calls, seconds=30)
            # Its message stays unacknowledged on Redis for the visibility timeout (12 h).
            first.kill()
        killed_at, first_worker, sent_before = time.monotonic(), run.worker, len(server.requests)
        with CeleryProcess(
            tmp_path, queues="api,default", name="second", beat=True, env=sweeping
        ) as second:
            run = wait_until(run, taken_over_from(first_worker), seconds=30)
            taken_after = time.monotonic() - killed_at
            run = wait_until(run, lambda run: run.status == JudgeRun.Status.DONE, seconds=60)
            done_after = time.monotonic() - killed_at
            log = second.log()

    assert "re-queued 1 judge runs" in log
    assert done_calls(run) == 40
    assert Annotation.objects.filter(annotator=judge.annotator).count() == 20
    repeated = len(server.requests) - 40
    assert 0 <= repeated <= 4
    print(
        f"\njudge worker killed after {sent_before} of 40 requests: taken over after "
        f"{taken_after:.1f}s (new worker started, then the sweeper), done after "
        f"{done_after:.1f}s, {repeated} calls repeated"
    )
