"""A Celery prefork worker on the gpu queue cannot start vLLM: its pool children are
daemonic. The backend says so, with the pool to use, instead of vLLM's own error."""

import time
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker

from inference.backends import vllm as vllm_backend
from inference.backends.base import BackendConfigError


@pytest.fixture(scope="module")
def load_task(celery_broker):
    @celery_broker.task(name="tests.vllm_engine_in_pool")
    def load_engine(report: str) -> None:
        try:
            vllm_backend.engine_for({"model": "org/model"})
        except BackendConfigError as error:
            Path(report).write_text(str(error))
        else:
            Path(report).write_text("started")

    return load_engine


def test_a_prefork_gpu_worker_refuses_to_start_vllm_with_the_pool_to_use(
    celery_broker, load_task, tmp_path
):
    report = tmp_path / "report.txt"
    with start_worker(
        celery_broker,
        pool="prefork",
        concurrency=1,
        queues=["gpu"],
        perform_ping_check=False,
        shutdown_timeout=30,
    ):
        load_task.apply_async(args=[str(report)], queue="gpu")
        deadline = time.monotonic() + 60
        while not report.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    assert report.exists(), "the prefork child never ran the task"
    message = report.read_text()
    assert "cannot start inside a Celery prefork pool child" in message
    assert "--pool solo" in message
