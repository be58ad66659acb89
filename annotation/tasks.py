from celery import shared_task

from annotation import services


@shared_task(acks_late=True, max_retries=0)
def run_import_job(job_id: int) -> str:
    return services.import_job_run(job_id=job_id)
