"""A training run launched on the page's service is executed by a real Celery worker.

Locally the broker is kombu's filesystem transport; CI points CELERY_BROKER_URL at Redis.
"""

import time

import pytest
from celery.contrib.testing.worker import start_worker

from inference.models import TrainingRun
from inference.training.services import training_run_launch
from tests.support.training import FAST

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def train_worker(django_db_setup, django_db_blocker, celery_broker):
    with (
        django_db_blocker.unblock(),
        start_worker(
            celery_broker,
            pool="solo",
            queues=["train"],
            perform_ping_check=False,
            shutdown_timeout=30,
        ),
    ):
        yield


def wait_for(run: TrainingRun, seconds: float = 90) -> TrainingRun:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if not run.is_active:
            return run
        time.sleep(0.2)
    raise AssertionError(f"training run still {run.status} after {seconds}s: {run.progress}")


def test_a_worker_on_the_train_queue_trains_selects_and_registers(lab, base_model, train_worker):
    run = training_run_launch(
        project=lab["project"],
        name="lima-tiny",
        training_set=lab["training_set"],
        base_model=str(base_model),
        dev_set=lab["dev_set"],
        judge=lab["judge"],
        recipe=FAST,
    )

    run = wait_for(run)

    assert run.status == TrainingRun.Status.DONE, run.message
    assert run.worker
    assert run.progress["step"] == run.progress["max_steps"] == 4
    assert run.scores.count() == 2
    assert run.registered_model.config["model"] == run.chosen_checkpoint
