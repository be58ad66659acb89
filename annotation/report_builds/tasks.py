"""The report build task: thin, it takes a build id and calls the worker."""

from celery import shared_task

from annotation.report_builds.worker import report_build_run


@shared_task(name="annotation.tasks.build_report", acks_late=True, max_retries=0)
def build_report(build_id: int) -> str:
    return report_build_run(build_id=build_id)
