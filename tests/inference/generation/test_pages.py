"""The generation page, API and commands: launch, progress with failures, cancel, register."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import LanguageModel
from annotation.services.rounds import round_create
from inference.generation.services import generation_launch
from inference.generation.worker import generation_run_model
from inference.models import GenerationRun
from tests.factories import make_model_with_responses, make_project, make_prompt_set, make_user
from tests.support.openai_completions_server import OpenAICompletionsServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("TEST_API_KEY", "sk-test")
    with OpenAICompletionsServer() as running:
        yield running


@pytest.fixture
def user():
    return make_user()


@pytest.fixture
def round_(user, server):
    project = make_project("lab", user)
    prompt_set = make_prompt_set(project, 4)
    candidate = LanguageModel.objects.create(
        project=project,
        name="gpt-4",
        backend="openai",
        config={
            "model": "gpt-4",
            "base_url": server.url,
            "api_key_env": "TEST_API_KEY",
            "max_attempts": 1,
        },
    )
    baseline = make_model_with_responses(project, prompt_set, "alpaca-65b")
    return round_create(
        project=project, prompt_set=prompt_set, candidate=candidate, baselines=[baseline]
    )


def run_tasks(round_):
    for task in round_.generation_runs.first().tasks.all():
        generation_run_model(task_id=task.pk)


def test_it_links_the_round_page_to_its_generation(client, user, round_):
    client.force_login(user)
    page = client.get(reverse("round-detail", args=[round_.pk])).content.decode()
    assert f'href="/inference/rounds/{round_.pk}/generation/"' in page
    assert client.get(f"/inference/rounds/{round_.pk}/generation/").status_code == 200


def test_it_launches_from_the_page_and_shows_progress_failures_and_throughput(
    client, user, round_, server
):
    client.force_login(user)
    url = reverse("generation-round", args=[round_.pk])
    assert "Not launched yet" in client.get(url).content.decode()

    response = client.post(url, {"max_tokens": "50", "temperature": ""})
    assert response.status_code == 302
    run = GenerationRun.objects.get()
    assert run.sampling == {"max_tokens": 50}
    server.fail_when("number 2?", "500")
    run_tasks(round_)

    page = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in page
    assert "3 / 4" in page and "4 / 4" in page
    assert "1 of 4 responses failed" in page
    assert "prompt 2: HTTP 500" in page
    assert "Responses/s" in page and "—" in page


def test_the_progress_polls_only_while_the_generation_is_queued_or_running(client, user, round_):
    client.force_login(user)
    url = reverse("generation-round", args=[round_.pk])
    assert "hx-trigger" not in client.get(url).content.decode()  # Not launched yet.
    generation_launch(round_=round_)
    assert 'hx-trigger="every 2s"' in client.get(url).content.decode()
    run_tasks(round_)
    assert not GenerationRun.objects.get().is_active
    page, partial = client.get(url), client.get(url, headers={"HX-Request": "true"})
    for html in (page.content.decode(), partial.content.decode()):
        assert 'id="generation-progress"' in html and "hx-trigger" not in html


def test_the_progress_reads_a_fixed_number_of_queries_however_many_responses_failed(
    client, user, round_, server
):
    client.force_login(user)
    url = reverse("generation-round", args=[round_.pk])
    generation_launch(round_=round_)
    with CaptureQueriesContext(connection) as before:
        client.get(url, headers={"HX-Request": "true"})
    server.fail_when("Question", "500")
    run_tasks(round_)
    with CaptureQueriesContext(connection) as after:
        page = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "4 of 4 responses failed" in page
    assert len(after) == len(before)


def test_it_shows_what_to_fix_when_a_launch_is_refused(client, user, round_):
    LanguageModel.objects.filter(name="gpt-4").update(config={"model": "gpt-4", "tmeout": 3})
    client.force_login(user)
    page = client.post(reverse("generation-round", args=[round_.pk]), {}).content.decode()
    assert "unknown key &#x27;tmeout&#x27;" in page
    assert GenerationRun.objects.count() == 0


def test_it_cancels_from_the_page(client, user, round_):
    client.force_login(user)
    run = generation_launch(round_=round_)
    response = client.post(reverse("generation-run-cancel", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.CANCELLED


def test_it_hides_other_projects_rounds(client, round_):
    client.force_login(make_user("outsider"))
    assert client.get(reverse("generation-round", args=[round_.pk])).status_code == 404
    run = generation_launch(round_=round_)
    assert client.post(reverse("generation-run-cancel", args=[run.pk])).status_code == 404


def test_it_registers_a_model_from_the_page_and_refuses_a_key(client, user):
    project = make_project("other", user)
    client.force_login(user)
    url = reverse("generation-model-new")
    form = {"project": project.pk, "name": "lima-7b", "backend": "vllm"}
    refused = client.post(url, {**form, "config": '{"model": "m", "hf_token": "hf_x"}'})
    assert "must not hold secrets (hf_token)" in refused.content.decode()
    response = client.post(
        url, {**form, "config": '{"model": "/models/lima", "end_of_turn": "<EOT>"}'}
    )
    assert response.status_code == 302
    model = LanguageModel.objects.get(name="lima-7b")
    assert (model.backend, model.config["end_of_turn"]) == ("vllm", "<EOT>")


def test_it_launches_and_reports_progress_through_the_api(user, round_):
    api = APIClient()
    api.force_authenticate(user)
    url = f"/api/rounds/{round_.pk}/generation/"
    assert api.get(url).json()["run"] is None
    refused = api.post(url, {"sampling": {"top_k": 5}}, format="json")
    assert refused.status_code == 400 and "Unknown sampling setting 'top_k'" in str(refused.json())

    launched = api.post(url, {"sampling": {"max_tokens": 20}, "seed": 5}, format="json")
    assert launched.status_code == 202
    assert launched.json()["status"] == "queued" and launched.json()["seed"] == 5
    run_tasks(round_)
    data = api.get(url).json()
    assert data["status"] == "done"
    [candidate] = [m for m in data["models"] if m["model"] == "gpt-4"]
    assert (candidate["done"], candidate["needed"], candidate["failed"]) == (4, 4, 0)
    assert candidate["responses_per_second"] > 0
    assert api.get(f"/api/rounds/{round_.pk}/").json()["item_count"] == 4


def test_it_registers_a_model_from_the_command_line(user):
    make_project("default")
    call_command(
        "register_model",
        "gpt-4",
        "--backend",
        "openai",
        "--config",
        json.dumps({"model": "gpt-4-0314", "api_key_env": "OPENAI_API_KEY"}),
    )
    model = LanguageModel.objects.get(name="gpt-4")
    assert model.config["model"] == "gpt-4-0314"
    with pytest.raises(CommandError, match=r"Unknown backend|invalid choice"):
        call_command("register_model", "x", "--backend", "llamacpp")
    with pytest.raises(CommandError, match="must not hold secrets"):
        call_command(
            "register_model", "y", "--backend", "openai", "--config", '{"api_key": "sk-abc"}'
        )


def test_it_refuses_a_bad_launch_on_the_command_line(round_):
    LanguageModel.objects.filter(name="gpt-4").update(backend="vllm", config={})
    with pytest.raises(CommandError, match="'model' is required"):
        call_command("launch_round", str(round_.pk))
