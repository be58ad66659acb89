"""Give what was generated before settings keys existed the key of the run that made it.

Responses, generation tasks and rounds made earlier all hold the empty key, which now means
"imported". Each generated response names its run in `generation["run"]`; its key is computed
from that run's sampling and seed and its model's config as it is now. A response whose run is
gone, or whose model no longer has a working backend config, keeps "" (it is then treated as
imported). A round compares, per generated model, the responses of its latest run's settings.
"""

from django.db import migrations

BATCH_SIZE = 1000


def label_generated(apps, schema_editor):
    from inference.backends.base import BackendConfigError, SamplingSettings, settings_key

    Response = apps.get_model("annotation", "Response")
    Round = apps.get_model("annotation", "Round")
    GenerationRun = apps.get_model("inference", "GenerationRun")
    GenerationTask = apps.get_model("inference", "GenerationTask")
    keys = {}

    def key_for(run, model):
        if (run.pk, model.pk) not in keys:
            try:
                sampling = SamplingSettings.from_overrides(
                    model.config.get("sampling"), run.sampling, {"seed": run.seed}
                )
                keys[run.pk, model.pk] = settings_key(model.backend, model.config, sampling)
            except (BackendConfigError, AttributeError, TypeError):
                keys[run.pk, model.pk] = ""
        return keys[run.pk, model.pk]

    runs = GenerationRun.objects.in_bulk()
    labelled = []
    for response in Response.objects.select_related("model").exclude(generation={}).iterator():
        generation = response.generation if isinstance(response.generation, dict) else {}
        run = runs.get(generation.get("run"))
        if run is not None:
            response.settings_key = key_for(run, response.model)
            labelled.append(response)
    Response.objects.bulk_update(labelled, ["settings_key"], batch_size=BATCH_SIZE)

    tasks = list(GenerationTask.objects.select_related("run", "model"))
    for task in tasks:
        task.settings_key = key_for(task.run, task.model)
    GenerationTask.objects.bulk_update(tasks, ["settings_key"], batch_size=BATCH_SIZE)

    for round_ in Round.objects.all():
        last = GenerationRun.objects.filter(round=round_).order_by("-created_at", "-id").first()
        if last is None:
            continue
        round_.response_keys = {
            str(task.model_id): task.settings_key
            for task in GenerationTask.objects.filter(run=last).exclude(settings_key="")
        }
        round_.save(update_fields=["response_keys"])


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0002_response_settings_key"),
        ("inference", "0004_response_settings_key"),
    ]

    operations = [migrations.RunPython(label_generated, migrations.RunPython.noop)]
