"""The training page, its API and the commands: upload, launch, watch, cancel, resume."""

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from inference.models import TrainingRun, TrainingSet
from inference.training.services import training_run_launch
from inference.training.worker import training_run_execute
from tests.support.training import FAST, jsonl

pytestmark = pytest.mark.django_db

Status = TrainingRun.Status


def _launch(lab, base_model, name="lima-tiny", **recipe):
    return training_run_launch(
        project=lab["project"],
        name=name,
        training_set=lab["training_set"],
        base_model=str(base_model),
        dev_set=lab["dev_set"],
        judge=lab["judge"],
        recipe={**FAST, **recipe},
    )


def test_it_uploads_a_training_set_and_shows_its_counts(client, user, lab):
    client.force_login(user)
    upload = SimpleUploadedFile("lima.jsonl", jsonl(3))

    response = client.post(
        reverse("training"),
        {"action": "upload", "project": lab["project"].pk, "name": "lima-1k", "file": upload},
    )

    assert response.status_code == 302
    training_set = TrainingSet.objects.get(name="lima-1k")
    assert training_set.examples.count() == 3
    assert training_set.stats["tokenizer"].startswith("estimate")
    page = client.get(reverse("training")).content.decode()
    assert "lima-1k" in page and "0 over 2048" in page


def test_a_file_with_bad_lines_is_refused_line_by_line_and_nothing_is_kept(client, user, lab):
    client.force_login(user)
    bad = jsonl(2) + b'{"prompt": "no answer"}\nnot json\n'
    upload = SimpleUploadedFile("bad.jsonl", bad)

    page = client.post(
        reverse("training"),
        {"action": "upload", "project": lab["project"].pk, "name": "bad", "file": upload},
    ).content.decode()

    assert "2 bad lines, nothing was imported" in page
    assert "line 3: &#x27;response&#x27; is missing" in page
    assert "line 4: not valid JSON" in page
    assert not TrainingSet.objects.filter(name="bad").exists()


def test_it_launches_from_the_page_and_shows_live_progress_and_a_cancel_button(
    client, user, lab, base_model
):
    client.force_login(user)
    response = client.post(
        reverse("training"),
        {
            "action": "launch",
            "project": lab["project"].pk,
            "name": "lima-tiny",
            "training_set": lab["training_set"].pk,
            "base_model": str(base_model),
            "dev_set": lab["dev_set"].pk,
            "judge": lab["judge"].pk,
            "recipe": json.dumps(FAST),
        },
    )
    run = TrainingRun.objects.get()
    assert response["Location"] == reverse("training-run", args=[run.pk])
    assert run.recipe == FAST and run.status == Status.QUEUED

    page = client.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 2s"' in page
    assert reverse("training-run-cancel", args=[run.pk]) in page

    client.post(reverse("training-run-cancel", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == Status.CANCELLED
    partial = client.get(reverse("training-run", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert "hx-trigger" not in partial.content.decode()
    assert reverse("training-run-resume", args=[run.pk]) in partial.content.decode()


def test_the_runs_list_polls_only_while_a_run_is_queued_training_or_selecting(
    client, user, lab, base_model
):
    client.force_login(user)
    assert "hx-trigger" not in client.get(reverse("training")).content.decode()
    run = _launch(lab, base_model)
    assert 'hx-trigger="every 2s"' in client.get(reverse("training")).content.decode()
    TrainingRun.objects.filter(pk=run.pk).update(status=Status.SELECTING)
    partial = client.get(reverse("training"), HTTP_HX_REQUEST="true").content.decode()
    assert 'id="training-runs"' in partial and 'hx-trigger="every 2s"' in partial
    TrainingRun.objects.filter(pk=run.pk).update(status=Status.FAILED)
    partial = client.get(reverse("training"), HTTP_HX_REQUEST="true").content.decode()
    assert 'id="training-runs"' in partial and "hx-trigger" not in partial


def test_the_runs_list_takes_the_same_queries_for_one_run_or_many(client, user, lab, base_model):
    client.force_login(user)
    _launch(lab, base_model)
    with CaptureQueriesContext(connection) as one_run:
        client.get(reverse("training"), HTTP_HX_REQUEST="true")
    for number in range(3):
        _launch(lab, base_model, name=f"lima-tiny-{number}")
    with CaptureQueriesContext(connection) as four_runs:
        client.get(reverse("training"), HTTP_HX_REQUEST="true")
    assert len(four_runs) == len(one_run)


def test_a_finished_run_shows_its_figures_scores_and_model(client, user, lab, base_model):
    run = training_run_execute(run_id=_launch(lab, base_model).pk)
    assert run.status == Status.DONE, run.message
    client.force_login(user)

    page = client.get(reverse("training-run", args=[run.pk])).content.decode()

    for shown in ("Epoch", "Loss", "Learning rate", "Tokens/s", "ETA", "chosen", "polyline"):
        assert shown in page
    assert "Registered as model <strong>lima-tiny</strong>" in page
    assert "4 of 4" in page


def test_others_cannot_see_a_run(client, lab, base_model):
    from tests.factories import make_user

    run = _launch(lab, base_model)
    client.force_login(make_user("outsider"))

    assert client.get(reverse("training-run", args=[run.pk])).status_code == 404
    assert client.post(reverse("training-run-cancel", args=[run.pk])).status_code == 404


def test_the_api_uploads_launches_reports_and_cancels(user, lab, base_model):
    api = APIClient()
    api.force_authenticate(user)

    created = api.post(
        reverse("api-training-sets"),
        {"project": "lab", "name": "api-set", "file": SimpleUploadedFile("s.jsonl", jsonl(2))},
        format="multipart",
    )
    assert created.status_code == 201, created.content
    assert created.json()["stats"]["examples"] == 2
    refused = api.post(
        reverse("api-training-sets"),
        {"project": "lab", "name": "x", "file": SimpleUploadedFile("s.jsonl", b"[1]\n")},
        format="multipart",
    )
    assert refused.status_code == 400
    assert refused.json()["lines"] == [{"line": 1, "problem": "expected a JSON object, found list"}]

    launched = api.post(
        reverse("api-training-runs"),
        {
            "project": "lab",
            "name": "api-run",
            "training_set": "api-set",
            "base_model": str(base_model),
            "dev_set": "dev",
            "judge": "chatgpt",
            "recipe": FAST,
        },
        format="json",
    )
    assert launched.status_code == 202, launched.content
    run_id = launched.json()["id"]
    training_run_execute(run_id=run_id)

    body = api.get(reverse("api-training-run", args=[run_id])).json()
    assert body["status"] == "done"
    assert body["progress"]["step"] == body["progress"]["max_steps"] == 2
    assert body["progress"]["learning_rate"] == pytest.approx(1e-6)
    assert [s["epoch"] for s in body["scores"]] == [1, 2]
    assert sum(s["chosen"] for s in body["scores"]) == 1
    assert body["registered_model"] is not None

    again = api.post(
        reverse("api-training-runs"),
        {
            "project": "lab",
            "name": "api-run",
            "training_set": "api-set",
            "base_model": str(base_model),
            "dev_set": "dev",
            "judge": "chatgpt",
        },
        format="json",
    )
    assert again.status_code == 400
    assert "already has a training run" in again.json()["detail"]
    cancelled = api.post(reverse("api-training-run-cancel", args=[run_id]))
    assert cancelled.json()["status"] == "done"


def test_the_commands_upload_and_train_here(lab, base_model, tmp_path):
    data = tmp_path / "lima-1k.jsonl"
    data.write_bytes(jsonl(4))
    out = io.StringIO()
    call_command(
        "upload_training_set",
        str(data),
        "--project",
        "lab",
        "--tokenizer",
        str(base_model),
        "--max-length",
        "12",
        stdout=out,
    )
    output = out.getvalue()
    assert "lima-1k in lab, 4 examples (1 multi-turn, 10 turns)" in output
    assert "Over 12 tokens (trimmed): 4" in output

    out = io.StringIO()
    settings = [f"--set={key}={json.dumps(value)}" for key, value in FAST.items()]
    call_command(
        "train",
        "--project=lab",
        "--name=cli-run",
        "--training-set=lima-1k",
        f"--base-model={base_model}",
        "--dev-set=dev",
        "--judge=rater",
        "--judge-model=gpt-3.5-turbo",
        f"--judge-base-url={lab['judge'].base_url}",
        f"--judge-api-key-env={lab['judge'].api_key_env}",
        *settings,
        "--here",
        stdout=out,
    )
    output = out.getvalue()
    assert "Judge" in output and "rater (gpt-3.5-turbo, helpfulness 1-6)" in output
    assert "done, epoch 2.00/2, step 4/4, loss" in output
    assert "lr 1.00e-06" in output
    assert "<- chosen" in output
    assert "Registered model" in output and "(vllm)" in output


def test_the_train_command_explains_what_is_missing(lab, tmp_path):
    with pytest.raises(CommandError, match="Give --name, --training-set, --base-model"):
        call_command("train", "--dev-set=dev", "--judge=chatgpt")
    with pytest.raises(CommandError, match="No training set named 'nope'"):
        call_command(
            "train",
            "--project=lab",
            "--name=x",
            "--training-set=nope",
            "--base-model=/m",
            "--dev-set=dev",
            "--judge=chatgpt",
        )
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"prompt": "q"}\n')
    with pytest.raises(CommandError, match="line 1: 'response' is missing"):
        call_command("upload_training_set", str(bad), "--project=lab")


@pytest.mark.parametrize("overrides", [[], ["--set", "epochs=2", "--set", "batch_size=4"]])
def test_the_train_command_parses_its_options_as_a_shell_runs_it(lab, capsys, overrides):
    # call_command skips Django's --settings handling; a shell run goes through it.
    from django.core.management import ManagementUtility

    argv = ["manage.py", "train", "--project=lab", "--training-set=nope", *overrides]
    with pytest.raises(SystemExit):
        ManagementUtility(argv).execute()
    assert "Give --name, --base-model" in capsys.readouterr().err
