"""Uploads imported by a real Celery worker over the configured broker.

Locally the broker is kombu's filesystem transport; CI points CELERY_BROKER_URL at Redis.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation.models import ImportJob, Prompt
from tests.factories import make_project, make_user
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

FINISHED = (ImportJob.Status.DONE, ImportJob.Status.FAILED)


@pytest.fixture
def researcher(client):
    user = make_user()
    project = make_project("lab", user)
    client.force_login(user)
    return project


def upload(client, project, name, content, kind="prompts"):
    return client.post(
        reverse("imports"),
        {
            "project": project.pk,
            "kind": kind,
            "prompt_set": "uploaded",
            "file": SimpleUploadedFile(name, content),
        },
    )


def test_it_imports_an_uploaded_file_on_a_celery_worker(client, researcher, celery_worker):
    content = b"\n".join(b'{"id": %d, "prompt": "Question %d"}' % (i, i) for i in range(250))
    assert upload(client, researcher, "prompts.jsonl", content).status_code == 302
    job = wait_until(ImportJob.objects.get(), lambda job: job.status in FINISHED)
    assert job.status == ImportJob.Status.DONE, job.message
    assert job.processed == job.total == 250
    assert Prompt.objects.filter(prompt_set__name="uploaded").count() == 250
    page = client.get(reverse("imports"), headers={"HX-Request": "true"}).content.decode()
    assert "250 imported" in page


def test_it_reports_a_bad_upload_by_line_and_imports_nothing(client, researcher, celery_worker):
    content = b'{"id": 1, "prompt": "fine"}\n{"id": 2, "prompt": ""}\n'
    upload(client, researcher, "bad.jsonl", content)
    job = wait_until(ImportJob.objects.get(), lambda job: job.status in FINISHED)
    assert job.status == ImportJob.Status.FAILED
    assert "bad.jsonl, line 2" in job.message and "'prompt'" in job.message
    assert Prompt.objects.count() == 0
