"""Uploaded files imported in the background: store the upload, queue its import."""

import logging

from django.db import transaction

from annotation.import_jobs.tasks import run_import_job
from annotation.models import (
    ImportJob,
    Project,
)

logger = logging.getLogger(__name__)


def import_job_create(*, project: Project, kind: str, upload, set_name: str, model_name: str, user):
    """Store an uploaded file and queue its import once the transaction commits."""
    with transaction.atomic():
        job = ImportJob.objects.create(
            project=project,
            kind=kind,
            file=upload,
            original_name=upload.name[:255],
            prompt_set_name=set_name,
            model_name=model_name,
            created_by=user,
        )
        transaction.on_commit(lambda: run_import_job.delay(job.pk))
    return job
