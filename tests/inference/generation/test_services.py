"""Generation services on the database, the task body called directly (no worker)."""

import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import Item, LanguageModel, Response
from annotation.services.rounds import round_create
from inference.generation import worker as generation_worker
from inference.generation.selectors import generation_progress
from inference.generation.services import (
    GenerationInvalid,
    generation_cancel,
    generation_launch,
    model_register,
)
from inference.generation.worker import generation_run_model
from inference.models import GenerationFailure, GenerationRun, GenerationTask
from inference.runs import stale_after
from tests.factories import make_model_with_responses, make_project, make_prompt_set
from tests.support.openai_completions_server import OpenAICompletionsServer
from tests.support.tiny_model import build_tiny_model

pytestmark = pytest.mark.django_db

Status = GenerationRun.Status


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("TEST_API_KEY", "sk-test")
    with OpenAICompletionsServer() as running:
        yield running


@pytest.fixture
def project():
    return make_project("lab")


@pytest.fixture
def prompt_set(project):
    return make_prompt_set(project, 5)


def api_model(project, server, name="gpt-4", **config):
    return LanguageModel.objects.create(
        project=project,
        name=name,
        backend="openai",
        config={
            "model": name,
            "base_url": server.url,
            "api_key_env": "TEST_API_KEY",
            "backoff_seconds": 0.01,
            "max_attempts": 2,
            **config,
        },
    )


def run_all(run: GenerationRun) -> GenerationRun:
    for task in run.tasks.filter(status=Status.QUEUED):
        generation_run_model(task_id=task.pk)
    run.refresh_from_db()
    return run


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    pytest.importorskip("transformers", reason="the train extra (transformers) is not installed")
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


def round_of(prompt_set, candidate, baseline, seed=7):
    return round_create(
        project=prompt_set.project,
        prompt_set=prompt_set,
        candidate=candidate,
        baselines=[baseline],
        shared_items=0,
        seed=seed,
    )


def compared(round_, side="candidate_response"):
    return set(Item.objects.filter(round=round_).values_list(side, flat=True))


def make_generated_round(project, prompt_set, candidate, **settings):
    baseline = make_model_with_responses(project, prompt_set, "alpaca-65b")
    return round_create(
        project=project,
        prompt_set=prompt_set,
        candidate=candidate,
        baselines=[baseline],
        shared_items=0,
        seed=7,
        **settings,
    )


def test_it_creates_a_round_before_generated_models_have_responses(project, prompt_set, server):
    round_ = make_generated_round(project, prompt_set, api_model(project, server))
    assert round_.items.count() == 0


def test_it_still_refuses_a_round_of_imported_models_without_responses(project, prompt_set):
    from annotation.services.rounds import RoundInvalid

    a = LanguageModel.objects.create(project=project, name="a")
    b = LanguageModel.objects.create(project=project, name="b")
    with pytest.raises(RoundInvalid, match="import responses first"):
        round_create(project=project, prompt_set=prompt_set, candidate=a, baselines=[b])


def test_it_generates_the_missing_responses_and_creates_the_items(project, prompt_set, server):
    candidate = api_model(project, server)
    round_ = make_generated_round(project, prompt_set, candidate)

    run = run_all(generation_launch(round_=round_))

    assert run.status == Status.DONE
    [task] = run.tasks.all()
    assert task.queue == "api"
    assert (task.needed, task.done, task.generated, task.failed) == (5, 5, 5, 0)
    assert task.completion_tokens > 0 and task.tokens_per_second > 0
    assert Item.objects.filter(round=round_).count() == 5
    response = Response.objects.filter(model=candidate).first()
    assert response.text.startswith("Here is an answer to: Question number")
    assert response.generation["seed"] == server.log[0].body["seed"] or any(
        entry.body["seed"] == response.generation["seed"] for entry in server.log
    )
    assert response.generation["sampling"]["top_p"] == 0.9
    assert response.generation["sampling"]["repetition_penalty"] is None
    assert response.generation["run"] == run.pk


def test_it_applies_round_sampling_over_the_models_and_the_papers(project, prompt_set, server):
    candidate = api_model(project, server, sampling={"temperature": 0.2, "max_tokens": 100})
    round_ = make_generated_round(project, prompt_set, candidate)
    run_all(generation_launch(round_=round_, sampling={"max_tokens": 3}))
    body = server.log[0].body
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.2, 0.9, 3)


def test_it_gives_the_same_seeds_to_the_same_prompts_in_every_run(project, prompt_set, server):
    round_ = make_generated_round(project, prompt_set, api_model(project, server))
    run_all(generation_launch(round_=round_))
    first = sorted(entry.body["seed"] for entry in server.log)
    Item.objects.all().delete()
    Response.objects.filter(model__backend="openai").delete()
    server.log.clear()
    run_all(generation_launch(round_=round_))
    assert sorted(entry.body["seed"] for entry in server.log) == first
    assert len(set(first)) == 5


def test_it_records_failures_with_their_error_and_resumes_only_what_is_missing(
    project, prompt_set, server
):
    server.fail_when("number 3?", "500")
    candidate = api_model(project, server)
    round_ = make_generated_round(project, prompt_set, candidate)

    run = run_all(generation_launch(round_=round_))

    assert run.status == Status.FAILED
    [task] = run.tasks.all()
    assert (task.done, task.failed, task.status) == (4, 1, Status.FAILED)
    assert "1 of 5 responses failed" in task.message
    [failure] = GenerationFailure.objects.all()
    assert failure.prompt.external_id == "3" and "HTTP 500" in failure.error
    assert not Response.objects.filter(model=candidate, prompt=failure.prompt).exists()
    assert Item.objects.filter(round=round_).count() == 4
    [row] = [p for p in generation_progress(round_) if p.model == "gpt-4"]
    assert (row.done, row.needed, row.failed) == (4, 5, 1)
    assert row.errors == [("3", failure.error)]

    server._when.clear()
    server.log.clear()
    resumed = run_all(generation_launch(round_=round_))
    assert resumed.pk != run.pk and resumed.status == Status.DONE
    assert len(server.log) == 1 and "number 3?" in server.log[0].body["messages"][0]["content"]
    assert Response.objects.filter(model=candidate).count() == 5
    assert Item.objects.filter(round=round_).count() == 5


def test_it_writes_nothing_twice_when_a_task_is_delivered_again(project, prompt_set, server):
    candidate = api_model(project, server)
    round_ = make_generated_round(project, prompt_set, candidate)
    run = generation_launch(round_=round_)
    [task] = run.tasks.all()
    generation_run_model(task_id=task.pk)
    # A worker that died after writing (its heartbeat went stale): the task is delivered again.
    died = timezone.now() - stale_after() - timedelta(seconds=1)
    GenerationTask.objects.filter(pk=task.pk).update(status=Status.RUNNING, heartbeat_at=died)
    server.log.clear()
    assert generation_run_model(task_id=task.pk) == "nothing missing"
    assert server.log == []
    assert generation_run_model(task_id=task.pk) == "already finished"
    assert Response.objects.filter(model=candidate).count() == 5
    assert Item.objects.filter(round=round_).count() == 5


def test_a_task_another_live_worker_generates_is_left_alone(project, prompt_set, server):
    round_ = make_generated_round(project, prompt_set, api_model(project, server))
    [task] = generation_launch(round_=round_).tasks.all()
    GenerationTask.objects.filter(pk=task.pk).update(
        status=Status.RUNNING, worker="gpu-1:7:elsewhere", heartbeat_at=timezone.now()
    )
    assert generation_run_model(task_id=task.pk) == "running on another worker"
    assert server.log == []
    task.refresh_from_db()
    assert (task.status, task.worker) == (Status.RUNNING, "gpu-1:7:elsewhere")


def test_it_returns_the_active_run_when_launched_twice(project, prompt_set, server):
    round_ = make_generated_round(project, prompt_set, api_model(project, server))
    first = generation_launch(round_=round_)
    assert generation_launch(round_=round_) == first
    assert GenerationRun.objects.count() == 1


def test_it_makes_items_at_once_when_every_response_exists(project, prompt_set):
    candidate = make_model_with_responses(project, prompt_set, "lima-65b")
    round_ = make_generated_round(project, prompt_set, candidate)
    run = generation_launch(round_=round_)
    assert run.status == Status.DONE and run.tasks.count() == 0


def test_it_cancels_a_run_so_that_its_tasks_never_start(project, prompt_set, server):
    round_ = make_generated_round(project, prompt_set, api_model(project, server))
    run = generation_launch(round_=round_)
    assert generation_cancel(run=run).status == Status.CANCELLED
    [task] = run.tasks.all()
    assert generation_run_model(task_id=task.pk) == "already finished"
    assert server.log == []
    assert generation_launch(round_=round_).pk != run.pk


def test_it_refuses_to_launch_a_bad_config_saying_what_to_fix(project, prompt_set, server):
    candidate = api_model(project, server, temprature=0.3)
    round_ = make_generated_round(project, prompt_set, candidate)
    with pytest.raises(GenerationInvalid, match="gpt-4: Fix the openai model config: unknown key"):
        generation_launch(round_=round_)
    with pytest.raises(GenerationInvalid, match="Unknown sampling setting 'topp'"):
        LanguageModel.objects.filter(pk=candidate.pk).update(config={"model": "gpt-4"})
        generation_launch(round_=round_, sampling={"topp": 0.5})
    assert GenerationRun.objects.count() == 0


def test_it_refuses_an_unknown_backend(project, prompt_set):
    candidate = LanguageModel.objects.create(project=project, name="x", backend="llamacpp")
    round_ = make_generated_round(project, prompt_set, candidate)
    with pytest.raises(GenerationInvalid, match="Unknown backend 'llamacpp'"):
        generation_launch(round_=round_)


@pytest.mark.parametrize(
    "backend, config, message",
    [
        (
            "openai",
            {"model": "gpt-4", "api_key_env": "EVALPLATFORM_TEST_UNSET_KEY"},
            "The environment variable EVALPLATFORM_TEST_UNSET_KEY is not set on this worker",
        ),
        (
            "transformers",
            {"model": "/nonexistent/checkpoint"},
            "The model folder /nonexistent/checkpoint does not exist on this worker",
        ),
        ("vllm", {"model": "meta-llama/Llama-2-7b-hf"}, "vLLM is not installed on this worker"),
    ],
)
def test_it_fails_the_task_with_what_to_fix(
    project, prompt_set, monkeypatch, backend, config, message
):
    pytest.importorskip("transformers")
    monkeypatch.setitem(sys.modules, "vllm", None)
    candidate = LanguageModel.objects.create(
        project=project, name="m", backend=backend, config=config
    )
    round_ = make_generated_round(project, prompt_set, candidate)
    run = run_all(generation_launch(round_=round_))
    [task] = run.tasks.all()
    assert task.status == Status.FAILED and run.status == Status.FAILED
    assert message in task.message
    assert [p.message for p in generation_progress(round_) if p.model == "m"] == [task.message]


def test_it_registers_a_model_and_refuses_secrets_and_bad_configs(project):
    model = model_register(
        project=project,
        name="gpt-4",
        backend="openai",
        config={"model": "gpt-4", "api_key_env": "OPENAI_API_KEY"},
    )
    assert model.backend == "openai"
    with pytest.raises(GenerationInvalid, match="must not hold secrets"):
        model_register(
            project=project, name="x", backend="openai", config={"model": "m", "api_key": "sk-1"}
        )
    with pytest.raises(GenerationInvalid, match="'model' is required"):
        model_register(project=project, name="y", backend="vllm", config={})


def test_it_stops_a_running_task_once_its_run_is_cancelled(
    project, prompt_set, server, monkeypatch
):
    monkeypatch.setattr(generation_worker, "WRITE_EVERY_RESULTS", 1)
    round_ = make_generated_round(project, prompt_set, api_model(project, server, concurrency=1))
    run = generation_launch(round_=round_)
    load = generation_worker.backend_load

    def load_then_cancel_after_two(backend, config):
        loaded = load(backend, config)
        generate = loaded.generate

        def generate_and_cancel(requests, sampling):
            for index, result in enumerate(generate(requests, sampling)):
                if index == 1:
                    generation_cancel(run=run)
                yield result

        loaded.generate = generate_and_cancel
        return loaded

    monkeypatch.setattr(generation_worker, "backend_load", load_then_cancel_after_two)
    [task] = run.tasks.all()
    assert generation_run_model(task_id=task.pk) == "cancelled"
    assert Response.objects.filter(model__backend="openai").count() == 2
    assert len(server.log) <= 3
    task.refresh_from_db()
    run.refresh_from_db()
    assert task.status == run.status == Status.CANCELLED


# ---------------------------------------------------------------- responses kept per settings


def test_it_keeps_separate_responses_for_rounds_launched_with_other_sampling(
    project, prompt_set, server
):
    candidate = api_model(project, server)
    baseline = make_model_with_responses(project, prompt_set, "alpaca-65b")
    paper, greedy = (
        round_of(prompt_set, candidate, baseline),
        round_of(prompt_set, candidate, baseline),
    )

    run_all(generation_launch(round_=paper))
    run_all(generation_launch(round_=greedy, sampling={"temperature": 0}))

    assert sorted(entry.body["temperature"] for entry in server.log) == [0] * 5 + [0.7] * 5
    assert Response.objects.filter(model=candidate).count() == 10
    paper.refresh_from_db()
    greedy.refresh_from_db()
    assert paper.response_key(candidate.pk) != greedy.response_key(candidate.pk)
    for round_, temperature in ((paper, 0.7), (greedy, 0)):
        responses = Response.objects.filter(pk__in=compared(round_))
        assert len(responses) == 5
        assert {r.settings_key for r in responses} == {round_.response_key(candidate.pk)}
        assert {r.generation["sampling"]["temperature"] for r in responses} == {temperature}
        assert compared(round_, "baseline_response") == set(
            baseline.responses.values_list("pk", flat=True)
        )


def test_it_reuses_the_responses_of_a_round_launched_with_the_same_settings(
    project, prompt_set, server
):
    candidate = api_model(project, server)
    baseline = make_model_with_responses(project, prompt_set, "alpaca-65b")
    first = round_of(prompt_set, candidate, baseline)
    run_all(generation_launch(round_=first, sampling={"temperature": 0.5}))
    responses = set(Response.objects.values_list("pk", flat=True))
    server.log.clear()

    second = round_of(prompt_set, candidate, baseline, seed=8)
    run = run_all(generation_launch(round_=second, sampling={"temperature": 0.5}, seed=7))

    assert server.log == []
    assert set(Response.objects.values_list("pk", flat=True)) == responses
    [task] = run.tasks.all()
    assert (run.status, task.done, task.generated) == (Status.DONE, 5, 0)
    assert compared(second) == compared(first) and len(compared(second)) == 5


def test_it_counts_the_seed_among_the_settings(project, prompt_set, server):
    candidate = api_model(project, server)
    baseline = make_model_with_responses(project, prompt_set, "alpaca-65b")
    run_all(generation_launch(round_=round_of(prompt_set, candidate, baseline)))
    other_seed = round_of(prompt_set, candidate, baseline, seed=8)
    run_all(generation_launch(round_=other_seed))
    assert len(server.log) == 10
    assert Response.objects.filter(model=candidate).count() == 10
    assert {r.generation["run"] for r in Response.objects.filter(pk__in=compared(other_seed))} == {
        other_seed.generation_runs.get().pk
    }


def test_it_refuses_to_mix_other_settings_into_a_round_that_compares_some_already(
    project, prompt_set, server
):
    candidate = api_model(project, server)
    round_ = make_generated_round(project, prompt_set, candidate)
    run_all(generation_launch(round_=round_, sampling={"temperature": 0}))
    server.log.clear()

    with pytest.raises(GenerationInvalid, match="already compares responses of 'gpt-4'") as refused:
        generation_launch(round_=round_)
    assert (
        "launch it with the same settings as before (sampling {'temperature': 0}, seed 7)"
        in str(refused.value)
    )
    assert round_.generation_runs.count() == 1

    again = generation_launch(round_=round_, sampling={"temperature": 0})
    assert again.status == Status.DONE and server.log == []
    assert Response.objects.filter(model=candidate).count() == 5


def test_it_fails_a_task_whose_model_settings_changed_since_the_launch(project, prompt_set, server):
    candidate = api_model(project, server)
    round_ = make_generated_round(project, prompt_set, candidate)
    [task] = generation_launch(round_=round_).tasks.all()
    LanguageModel.objects.filter(pk=candidate.pk).update(
        config={**candidate.config, "end_of_turn": "<EOT>"}
    )

    assert "settings changed since this generation was launched" in generation_run_model(
        task_id=task.pk
    )
    task.refresh_from_db()
    assert task.status == Status.FAILED and server.log == []
    assert not Response.objects.filter(model=candidate).exists()

    run = generation_launch(round_=round_)
    # How the model is run is not part of its settings: the task goes ahead.
    LanguageModel.objects.filter(pk=candidate.pk).update(
        config={**candidate.config, "end_of_turn": "<EOT>", "concurrency": 2}
    )
    assert run_all(run).status == Status.DONE
    assert server.log[0].body["stop"] == ["<EOT>"]


def test_it_leaves_a_model_compared_on_imported_responses_to_them(project, prompt_set, server):
    candidate = make_model_with_responses(project, prompt_set, "lima-65b")
    baseline = api_model(project, server)
    Response.objects.bulk_create(
        Response(prompt=prompt, model=baseline, text=f"Imported answer to {prompt.external_id}")
        for prompt in prompt_set.prompts.filter(position__lt=3)
    )
    round_ = round_of(prompt_set, candidate, baseline)
    assert len(compared(round_, "baseline_response")) == 3

    run = run_all(generation_launch(round_=round_))

    assert run.status == Status.DONE and run.tasks.count() == 0 and server.log == []
    round_.refresh_from_db()
    assert round_.response_keys == {} and round_.items.count() == 3


def test_it_generates_with_transformers_once_per_settings(
    project, prompt_set, tiny_model, monkeypatch
):
    requested = []
    load = generation_worker.backend_load

    def counting_load(backend, config):
        loaded = load(backend, config)
        generate = loaded.generate

        def generate_and_count(requests, sampling):
            requested.append(len(requests))
            return generate(requests, sampling)

        loaded.generate = generate_and_count
        return loaded

    monkeypatch.setattr(generation_worker, "backend_load", counting_load)
    candidate = LanguageModel.objects.create(
        project=project,
        name="tiny",
        backend="transformers",
        config={"model": str(tiny_model), "batch_size": 5, "sampling": {"max_tokens": 3}},
    )
    baseline = make_model_with_responses(project, prompt_set, "alpaca-65b")
    paper, cooler, paper_again = (round_of(prompt_set, candidate, baseline) for _ in range(3))

    for round_, sampling in ((paper, None), (cooler, {"temperature": 0.2}), (paper_again, None)):
        assert run_all(generation_launch(round_=round_, sampling=sampling)).status == Status.DONE

    assert requested == [5, 5]
    assert Response.objects.filter(model=candidate).count() == 10
    assert compared(paper_again) == compared(paper)
    assert not compared(cooler) & compared(paper)
    assert Item.objects.count() == 15
