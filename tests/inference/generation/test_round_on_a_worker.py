"""A launched round gets its responses from a real Celery worker, and its crowd link works.

Locally the broker is kombu's filesystem transport; CI points CELERY_BROKER_URL at Redis.
"""

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from annotation.models import Item, LanguageModel, Response
from annotation.services.rounds import round_create
from inference.generation.services import generation_launch
from inference.models import GenerationRun
from tests.factories import make_project, make_prompt_set
from tests.support.tiny_model import build_tiny_model
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    pytest.importorskip("transformers", reason="the train extra (transformers) is not installed")
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


def test_it_generates_a_round_on_a_worker_and_the_crowd_link_works(
    client, tiny_model, celery_worker
):
    project = make_project("lab")
    prompt_set = make_prompt_set(project, 6)
    config = {"model": str(tiny_model), "batch_size": 4, "sampling": {"max_tokens": 5}}
    candidate = LanguageModel.objects.create(
        project=project, name="tiny-sft", backend="transformers", config=config
    )
    baseline = LanguageModel.objects.create(
        project=project,
        name="tiny-base",
        backend="transformers",
        config={**config, "prompt_format": "{prompt}"},
    )
    round_ = round_create(
        project=project,
        prompt_set=prompt_set,
        candidate=candidate,
        baselines=[baseline],
        shared_items=2,
        seed=99,
    )
    assert round_.items.count() == 0

    run = generation_launch(round_=round_, sampling={"temperature": 0.5})
    run = wait_until(run, lambda run: not run.is_active)

    assert run.status == GenerationRun.Status.DONE, [t.message for t in run.tasks.all()]
    assert Response.objects.filter(model=candidate).count() == 6
    assert Response.objects.filter(model=baseline).count() == 6
    generation = Response.objects.filter(model=candidate).first().generation
    assert generation["backend"] == "transformers"
    assert generation["sampling"]["temperature"] == 0.5
    assert generation["sampling"]["top_p"] == 0.9
    assert generation["sampling"]["repetition_penalty"] == 1.2
    assert generation["sampling"]["max_tokens"] == 5
    assert isinstance(generation["seed"], int)
    assert Item.objects.filter(round=round_).count() == 6
    assert Item.objects.filter(round=round_, is_shared=True).count() == 2
    for task in run.tasks.all():
        assert (task.done, task.needed, task.generated, task.failed) == (6, 6, 6, 0)
        assert task.responses_per_second > 0

    landing = client.post(
        reverse("crowd-landing", args=[round_.crowd_token]), {"worker_id": "worker-1"}
    )
    work = client.get(landing["Location"])
    assert work.status_code == 200
    assert "Answer A" in work.content.decode()


def test_it_follows_a_launch_from_the_command_line(tiny_model, celery_worker):
    project = make_project("default")
    prompt_set = make_prompt_set(project, 3)
    config = json.dumps({"model": str(tiny_model), "sampling": {"max_tokens": 3}})
    for name in ("candidate", "baseline"):
        call_command("register_model", name, "--backend", "transformers", "--config", config)
    round_ = round_create(
        project=project,
        prompt_set=prompt_set,
        candidate=LanguageModel.objects.get(name="candidate"),
        baselines=[LanguageModel.objects.get(name="baseline")],
        shared_items=0,
    )
    out = io.StringIO()
    call_command("launch_round", str(round_.pk), "--wait", stdout=out)
    output = out.getvalue()
    assert "queues: default" in output
    assert "[##############################] 6/6" in output
    assert "candidate: done" in output and "responses/s" in output
    assert f"Round {round_.pk}: 3 items" in output
    assert f"/c/{round_.crowd_token}/" in output
