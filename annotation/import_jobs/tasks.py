"""Celery tasks of the human side: thin, they take ids and call the worker."""

from celery import shared_task

from annotation.imports.worker import import_job_run


@shared_task(name="annotation.tasks.run_import_job", acks_late=True, max_retries=0)
def run_import_job(job_id: int) -> str:
    return import_job_run(job_id=job_id)
