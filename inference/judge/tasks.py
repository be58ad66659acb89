"""Celery tasks of the judge: thin, they take ids and call the worker."""

from celery import shared_task

from inference.judge.worker import judge_run_execute


# The name predates the judge package: queued tasks keep their name across the move.
@shared_task(name="inference.tasks.judge_round", acks_late=True, max_retries=0)
def judge_round(run_id: int) -> str:
    """Make the judge run's missing calls; a second delivery only finds nothing left to do."""
    run = judge_run_execute(run_id=run_id)
    return f"{run.status}: {run.message}" if run.message else run.status
