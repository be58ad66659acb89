"""The experiment task: thin, it takes an experiment's id and calls the worker.

On the `train` queue, since the worker trains each candidate in its own process. Late
acknowledgement: a task whose worker died is delivered again and goes on where it stopped; a
delivery that finds its earlier delivery's heartbeat fresh waits for it to go stale.
"""

from typing import Any

from celery import shared_task

from inference.experiments.worker import ExperimentBusy, experiment_execute
from inference.runs import LeaseBusy


@shared_task(
    name="inference.experiments.tasks.run_experiment",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=100,
)
def run_experiment(self: Any, experiment_id: int) -> str:
    try:
        experiment = experiment_execute(experiment_id=experiment_id, task_id=self.request.id)
    except (LeaseBusy, ExperimentBusy) as busy:
        raise self.retry(countdown=busy.retry_in, exc=busy) from None
    return f"{experiment.status}: {experiment.message}" if experiment.message else experiment.status
