"""The training task: thin, it takes a run's id and calls the worker.

On the `train` queue, one run at a time per worker (see docker-compose.yml). Late
acknowledgement: a task whose worker died is delivered again and continues from the run's last
checkpoint. A delivery that finds another live worker on the run waits and looks again.
"""

from typing import Any

from celery import shared_task

from inference.runs import stale_after
from inference.training.worker import TrainingBusy, training_run_execute


@shared_task(
    name="inference.training.tasks.train_model",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=100,
)
def train_model(self: Any, run_id: int) -> str:
    try:
        run = training_run_execute(run_id=run_id)
    except TrainingBusy as busy:
        raise self.retry(countdown=stale_after().total_seconds(), exc=busy) from None
    return f"{run.status}: {run.message}" if run.message else run.status
