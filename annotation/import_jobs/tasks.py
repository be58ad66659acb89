"""The import task: thin, it takes a job id and calls the worker."""

from celery import shared_task

from annotation.import_jobs.worker import import_job_run


@shared_task(name="annotation.tasks.run_import_job", acks_late=True, max_retries=0)
def run_import_job(job_id: int) -> str:
    return import_job_run(job_id=job_id)
