"""Responses generated before settings keys get their run's key when the database is migrated."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from annotation.models import Response, Round
from inference.backends.base import SamplingSettings, settings_key
from inference.models import GenerationTask

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("annotation", "0001_initial"), ("inference", "0003_training")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_it_gives_responses_generated_before_settings_keys_the_key_of_their_run():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    apps = migrate(BEFORE)
    try:
        project = apps.get_model("annotation", "Project").objects.create(name="lab")
        prompt_set = apps.get_model("annotation", "PromptSet").objects.create(
            project=project, name="s"
        )
        prompt = apps.get_model("annotation", "Prompt").objects.create(
            prompt_set=prompt_set, external_id="0", position=0, text="Hi?"
        )
        models = apps.get_model("annotation", "LanguageModel").objects
        config = {"model": "gpt-4", "sampling": {"max_tokens": 100}}
        generated = models.create(project=project, name="gpt-4", backend="openai", config=config)
        imported = models.create(project=project, name="alpaca")
        round_ = apps.get_model("annotation", "Round").objects.create(
            project=project, name="r", prompt_set=prompt_set, candidate=generated, seed=1
        )
        round_.baselines.add(imported)
        run = apps.get_model("inference", "GenerationRun").objects.create(
            round=round_, sampling={"temperature": 0}, seed=5
        )
        apps.get_model("inference", "GenerationTask").objects.create(
            run=run, model=generated, queue="api", status="done"
        )
        responses = apps.get_model("annotation", "Response").objects
        responses.create(prompt=prompt, model=generated, text="G.", generation={"run": run.pk})
        responses.create(prompt=prompt, model=imported, text="I.")
    finally:
        migrate(latest)

    sampling = SamplingSettings.from_overrides({"max_tokens": 100}, {"temperature": 0}, {"seed": 5})
    key = settings_key("openai", config, sampling)
    assert dict(Response.objects.values_list("model__name", "settings_key")) == {
        "gpt-4": key,
        "alpaca": "",
    }
    assert GenerationTask.objects.get().settings_key == key
    assert Round.objects.get().response_keys == {str(generated.pk): key}
