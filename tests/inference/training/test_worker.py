"""A training run launched on the page's service is executed by a real Celery worker.

Locally the broker is kombu's filesystem transport; CI points CELERY_BROKER_URL at Redis.
"""

import pytest

from inference.models import TrainingRun
from inference.training.services import training_run_launch
from tests.support.training import FAST
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_on_the_train_queue_trains_selects_and_registers(lab, base_model, celery_worker):
    run = training_run_launch(
        project=lab["project"],
        name="lima-tiny",
        training_set=lab["training_set"],
        base_model=str(base_model),
        dev_set=lab["dev_set"],
        judge=lab["judge"],
        recipe=FAST,
    )

    run = wait_until(run, lambda run: not run.is_active, seconds=90, every=0.2)

    assert run.status == TrainingRun.Status.DONE, run.message
    assert run.worker
    assert run.progress["step"] == run.progress["max_steps"] == 4
    assert run.scores.count() == 2
    assert run.registered_model.config["model"] == run.chosen_checkpoint
