from celery import shared_task

from inference import services


@shared_task(acks_late=True, max_retries=0)
def judge_round(run_id: int) -> str:
    """Make the judge run's missing calls; a second delivery only finds nothing left to do."""
    run = services.judge_run_execute(run_id=run_id)
    return f"{run.status}: {run.message}" if run.message else run.status
