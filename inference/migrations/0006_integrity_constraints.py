"""A generation task's progress and a training run's chosen checkpoint as database constraints.

Existing rows are checked first. A run with several chosen checkpoints keeps the one its
`chosen_checkpoint` names, when exactly one is; any other row that breaks a constraint stops the
migration, naming the rows, before a constraint is added.
"""

from django.db import migrations, models
from django.db.models import Count, F

SHOWN = 20


def _listed(rows: list, total: int) -> str:
    more = f" and {total - len(rows)} more" if total > len(rows) else ""
    return ", ".join(str(row) for row in rows) + more


def keep_the_registered_choice(apps):
    CheckpointScore = apps.get_model("inference", "CheckpointScore")
    TrainingRun = apps.get_model("inference", "TrainingRun")
    several = (
        CheckpointScore.objects.filter(chosen=True)
        .values("run_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("run_id", flat=True)
    )
    for run in TrainingRun.objects.filter(pk__in=list(several)):
        chosen = run.scores.filter(chosen=True)
        if run.chosen_checkpoint and chosen.filter(path=run.chosen_checkpoint).count() == 1:
            chosen.exclude(path=run.chosen_checkpoint).update(chosen=False)


def check_existing_rows(apps, schema_editor):
    GenerationTask = apps.get_model("inference", "GenerationTask")
    CheckpointScore = apps.get_model("inference", "CheckpointScore")
    keep_the_registered_choice(apps)
    problems = []
    bad = GenerationTask.objects.filter(done__gt=F("needed")).order_by("pk")
    if bad.exists():
        rows = [
            f"id {pk} (done={done}, needed={needed})"
            for pk, done, needed in bad.values_list("pk", "done", "needed")[:SHOWN]
        ]
        problems.append("generation tasks with done > needed: " + _listed(rows, bad.count()))
    bad = (
        CheckpointScore.objects.filter(chosen=True)
        .values("run_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .order_by("run_id")
    )
    if bad.exists():
        rows = [
            f"run {run} ({n} chosen checkpoints)"
            for run, n in bad.values_list("run_id", "n")[:SHOWN]
        ]
        problems.append(
            "training runs with more than one chosen checkpoint: " + _listed(rows, bad.count())
        )
    if problems:
        raise RuntimeError(
            "Cannot add the inference integrity constraints; fix these rows and migrate again "
            "(nothing was changed): " + "; ".join(problems)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("inference", "0005_label_generated_responses"),
    ]

    operations = [
        migrations.RunPython(check_existing_rows, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="checkpointscore",
            constraint=models.UniqueConstraint(
                condition=models.Q(("chosen", True)),
                fields=("run",),
                name="checkpoint_score_one_chosen_per_run",
            ),
        ),
        migrations.AddConstraint(
            model_name="generationtask",
            constraint=models.CheckConstraint(
                condition=models.Q(("done__lte", models.F("needed"))),
                name="generation_task_done_within_needed",
            ),
        ),
    ]
