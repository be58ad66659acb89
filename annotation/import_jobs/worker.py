"""Running a queued import job: the upload read back, imported, and the outcome recorded."""

import logging

from django.utils import timezone

from annotation.imports.prompts import prompts_import
from annotation.imports.records import ImportFailed
from annotation.imports.responses import responses_import
from annotation.models import ImportJob

logger = logging.getLogger(__name__)


def import_job_run(*, job_id: int) -> str:
    """Run one queued import; safe to run twice (a finished job is left as it is)."""
    claimed = ImportJob.objects.filter(
        pk=job_id, status__in=[ImportJob.Status.PENDING, ImportJob.Status.RUNNING]
    ).update(status=ImportJob.Status.RUNNING)
    if not claimed:
        return "already finished"
    job = ImportJob.objects.select_related("project").get(pk=job_id)

    def progress(done: int, total: int) -> None:
        ImportJob.objects.filter(pk=job_id).update(processed=done, total=total)

    try:
        with job.file.open("rb") as handle:
            raw = handle.read()
        if job.kind == ImportJob.Kind.PROMPTS:
            summary = prompts_import(
                project=job.project, set_name=job.prompt_set_name, raw=raw,
                file=job.original_name, progress=progress,
            )  # fmt: skip
        else:
            summary = responses_import(
                project=job.project, set_name=job.prompt_set_name, raw=raw,
                file=job.original_name, model_name=job.model_name or None, progress=progress,
            )  # fmt: skip
    except ImportFailed as failure:
        message, status = str(failure), ImportJob.Status.FAILED
    except Exception:
        # The error's text may quote SQL or data; the researcher gets the job's id, the log
        # the rest. The import's transaction was rolled back.
        logger.exception("import job %s failed", job_id)
        message, status = (
            f"The import stopped on an unexpected error (import job {job_id} in the server "
            "log); nothing was imported.",
            ImportJob.Status.FAILED,
        )
    else:
        message = f"{summary.created} imported, {summary.skipped} already present"
        if summary.models_created:
            message += f"; new models: {', '.join(summary.models_created)}"
        status = ImportJob.Status.DONE
    ImportJob.objects.filter(pk=job_id).update(
        status=status, message=message, finished_at=timezone.now()
    )
    return message
