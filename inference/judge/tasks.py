"""Celery tasks of the judge: thin, they take ids and call the worker."""

from typing import Any

from celery import shared_task

from inference.judge.worker import judge_run_execute
from inference.runs import LeaseBusy


# The name predates the judge package: queued tasks keep their name across the move.
# Unbounded retries: a delivery only waits while an earlier delivery of the same message holds
# the run with a fresh heartbeat, which ends when that one finishes or its heartbeat goes stale.
@shared_task(
    name="inference.tasks.judge_round",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def judge_round(self: Any, run_id: int) -> str:
    """Make the judge run's missing calls; a second delivery only finds nothing left to do."""
    try:
        run = judge_run_execute(run_id=run_id, task_id=self.request.id)
    except LeaseBusy as busy:
        raise self.retry(countdown=busy.retry_in, exc=busy) from None
    return f"{run.status}: {run.message}" if run.message else run.status
