"""Deployment checks, the Content-Security-Policy header, JSON API errors, bounded pages and
upload size limits."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from annotation.import_jobs.worker import import_job_run
from annotation.models import ImportJob, Prompt, PromptSet
from evalplatform.api_errors import SERVER_ERROR, exception_handler
from tests.factories import make_project, make_prompt_set, make_round, make_user

REPOSITORY = Path(__file__).resolve().parent.parent


def production_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What docker/entrypoint.sh runs under: the image's ENV and docker-compose.yml's values."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "eval.example.org,localhost",
        "PUBLIC_BASE_URL": "https://eval.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://eval.example.org",
        "DATABASE_URL": os.environ.get(
            "DATABASE_URL", "postgres://evalplatform:evalplatform@postgres:5432/evalplatform"
        ),
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://redis:6379/0"),
        "LOG_LEVEL": "INFO",
        "EVALPLATFORM_VAR_DIR": str(tmp_path / "var"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "TRAINING_DIR": str(tmp_path / "training"),
        **extra,
    }


def check_deploy(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_clean_with_production_settings(tmp_path):
    result = check_deploy(production_environment(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr


def test_the_plain_http_trial_mode_turns_https_off_and_check_deploy_says_so(tmp_path):
    result = check_deploy(production_environment(tmp_path, PLAIN_HTTP="1"))

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


@pytest.mark.django_db
def test_every_page_is_served_with_a_content_security_policy(client):
    round_ = make_round(prompts=1)

    for path in ("/accounts/login/", f"/c/{round_.crowd_token}/", "/api/projects/"):
        policy = client.get(path)["Content-Security-Policy"]
        assert "default-src 'self'" in policy
        assert "script-src 'self'" in policy
        assert "style-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        assert "unsafe-eval" not in policy


@pytest.fixture
def user():
    return make_user()


@pytest.fixture
def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("param", ["limit", "offset"])
@pytest.mark.parametrize("value", [str(2**63), str(10**40), "-1", "ten"])
def test_a_page_parameter_no_64_bit_integer_holds_is_refused_with_400(api, param, value):
    answer = api.get(f"/api/projects/?{param}={value}")

    assert answer.status_code == 400
    assert param in answer.json()


@pytest.mark.django_db
def test_a_limit_above_the_maximum_returns_at_most_max_limit_rows(api, user):
    prompt_set = make_prompt_set(make_project("lab", user), count=1005)

    answer = api.get(f"/api/prompt-sets/{prompt_set.pk}/prompts/?limit=1000000000")

    assert answer.status_code == 200
    body = answer.json()
    assert body["count"] == 1005
    assert len(body["results"]) == 1000
    assert "limit=1000&" in body["next"]


@pytest.mark.django_db
def test_an_api_path_that_does_not_exist_answers_json_404(api):
    answer = api.get("/api/no-such-thing/")

    assert answer.status_code == 404
    assert answer.json() == {"detail": "Not found."}


def test_an_unexpected_api_error_answers_json_500_without_its_details(rf):
    request = rf.get("/api/projects/")

    answer = exception_handler(
        RuntimeError('duplicate key value violates "auth_user_pkey" (postgres://secret@db)'),
        {"request": request, "view": None},
    )

    assert answer is not None
    assert answer.status_code == 500
    assert answer.data == {"detail": SERVER_ERROR}
    assert "secret" not in json.dumps(answer.data)


def jsonl_upload(records: int, name: str = "prompts.jsonl") -> SimpleUploadedFile:
    lines = "\n".join(
        json.dumps({"id": str(i), "prompt": f"Question {i}?"}) for i in range(records)
    )
    return SimpleUploadedFile(name, lines.encode(), content_type="application/jsonl")


@pytest.mark.django_db
def test_an_api_import_over_the_size_limit_answers_json_413(api, user, settings):
    settings.IMPORT_MAX_BYTES = 100
    project = make_project("lab", user)

    answer = api.post(
        "/api/prompt-sets/import/",
        {"project": project.pk, "name": "big", "file": jsonl_upload(20)},
        format="multipart",
    )

    assert answer.status_code == 413
    assert "at most 100" in answer.json()["detail"]
    assert not PromptSet.objects.filter(name="big").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/prompt-sets/import/", "/imports/"])
def test_a_body_far_over_the_limit_is_refused_from_its_content_length_alone(
    client, user, settings, path
):
    settings.IMPORT_MAX_BYTES = 100
    client.force_login(user)

    # The declared length is never read: 10 GB would time out a worker that tried.
    answer = client.generic(
        "POST",
        path,
        b"not read",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(10 * 1024**3),
    )

    assert answer.status_code == 413
    if path.startswith("/api/"):
        assert "at most 100" in answer.json()["detail"]
    else:
        assert "at most 100" in answer.content.decode()


@pytest.mark.django_db
def test_the_upload_page_shows_a_form_error_for_a_file_over_the_limit(client, user, settings):
    settings.IMPORT_MAX_BYTES = 100
    project = make_project("lab", user)
    client.force_login(user)

    page = client.get("/imports/")
    answer = client.post(
        "/imports/",
        {"project": project.pk, "kind": "prompts", "prompt_set": "big", "file": jsonl_upload(20)},
    )

    assert 'data-max-bytes="100"' in page.content.decode()
    assert answer.status_code == 200
    assert "The file is too large: an import may be at most 100" in answer.content.decode()
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_a_large_api_import_runs_as_a_background_job_with_progress(api, user, settings):
    settings.IMPORT_API_SYNC_MAX_BYTES = 100
    project = make_project("lab", user)

    answer = api.post(
        "/api/prompt-sets/import/",
        {"project": project.pk, "name": "big", "file": jsonl_upload(30)},
        format="multipart",
    )

    assert answer.status_code == 202
    job = answer.json()
    assert job["status"] == "pending"
    assert job["kind"] == "prompts"
    assert not PromptSet.objects.filter(name="big").exists()

    import_job_run(job_id=job["id"])

    progress = api.get(f"/api/import-jobs/{job['id']}/").json()
    assert progress["status"] == "done"
    assert progress["processed"] == progress["total"] == 30
    assert Prompt.objects.filter(prompt_set__name="big").count() == 30


@pytest.mark.django_db
def test_import_jobs_of_another_team_are_not_found(api):
    other = make_project("other team")
    job = ImportJob.objects.create(
        project=other, kind=ImportJob.Kind.PROMPTS, original_name="x.jsonl", prompt_set_name="x"
    )

    assert api.get(f"/api/import-jobs/{job.pk}/").status_code == 404
    assert api.get("/api/import-jobs/").json()["results"] == []
