"""The training task: thin, it takes a run's id and calls the service.

On the `train` queue, one run at a time per worker (see docker-compose.yml). Late
acknowledgement: a task whose worker died is delivered again and continues from the run's last
checkpoint. A delivery that finds another live worker on the run waits and looks again.
"""

from celery import shared_task

from inference.training import services


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=100)
def train_model(self, run_id: int) -> str:
    try:
        run = services.training_run_execute(run_id=run_id)
    except services.TrainingBusy as busy:
        raise self.retry(countdown=services.HEARTBEAT_STALE.total_seconds(), exc=busy) from None
    return f"{run.status}: {run.message}" if run.message else run.status
