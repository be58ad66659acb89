"""Celery tasks of generation: thin, they take ids and call the worker.

Each task is sent to its backend's queue (`gpu` for vLLM, `api` for OpenAI-compatible
endpoints, `default` for transformers) by `generation_launch`. Late acknowledgement: a task
whose worker dies is delivered again, waits for the dead worker's heartbeat to go stale, takes
the task over and makes only the responses still missing.
"""

from typing import Any

from celery import shared_task

from inference.generation.worker import generation_run_model
from inference.runs import LeaseBusy


# Unbounded retries, as the judge's: a delivery waits only while an earlier delivery of the
# same message holds the task with a fresh heartbeat.
@shared_task(
    name="inference.generation_tasks.generate_responses",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def generate_responses(self: Any, task_id: int) -> str:
    try:
        return generation_run_model(task_id=task_id, celery_task_id=self.request.id)
    except LeaseBusy as busy:
        raise self.retry(countdown=busy.retry_in, exc=busy) from None
