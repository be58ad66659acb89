"""Invariants of the machine side's rows, held by the database, and the migration adding them."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import F

from inference.generation.models import GenerationRun, GenerationTask
from inference.judge.services import judge_create
from inference.training.models import CheckpointScore, TrainingRun, TrainingSet
from tests.factories import make_project, make_prompt_set, make_round

BEFORE = [("inference", "0005_label_generated_responses")]


def refused(write) -> bool:
    try:
        with transaction.atomic():
            write()
    except IntegrityError:
        return True
    return False


def training_run(project) -> TrainingRun:
    return TrainingRun.objects.create(
        project=project,
        name="lima",
        training_set=TrainingSet.objects.create(project=project, name="curated"),
        base_model="/models/base",
        dev_set=make_prompt_set(project, 2, name="dev"),
        judge=judge_create(project=project, name="chatgpt", mode="helpfulness_1_6"),
    )


@pytest.mark.django_db
def test_it_refuses_a_generation_task_with_more_done_than_needed():
    round_ = make_round(prompts=2)
    run = GenerationRun.objects.create(round=round_, seed=1)
    task = GenerationTask.objects.create(
        run=run, model=round_.candidate, queue="api", needed=2, done=1
    )

    assert not refused(lambda: GenerationTask.objects.filter(pk=task.pk).update(done=F("needed")))
    assert refused(lambda: GenerationTask.objects.filter(pk=task.pk).update(done=F("needed") + 1))
    assert refused(
        lambda: GenerationTask.objects.create(
            run=GenerationRun.objects.create(round=round_, seed=2),
            model=round_.candidate,
            queue="api",
            needed=1,
            done=2,
        )
    )


@pytest.mark.django_db
def test_it_refuses_a_second_chosen_checkpoint_in_one_run():
    run = training_run(make_round(prompts=2).project)
    CheckpointScore.objects.create(run=run, step=5, epoch=5, path="/c/5", chosen=True)
    CheckpointScore.objects.create(run=run, step=6, epoch=6, path="/c/6")

    assert refused(lambda: CheckpointScore.objects.filter(run=run, step=6).update(chosen=True))
    assert refused(
        lambda: CheckpointScore.objects.create(run=run, step=7, epoch=7, path="/c/7", chosen=True)
    )


@pytest.mark.django_db
def test_it_lets_the_best_checkpoint_be_chosen_again_as_registration_does():
    run = training_run(make_round(prompts=2).project)
    CheckpointScore.objects.create(run=run, step=5, epoch=5, path="/c/5", chosen=True)
    CheckpointScore.objects.create(run=run, step=6, epoch=6, path="/c/6")
    other = training_run(make_project("other"))
    CheckpointScore.objects.create(run=other, step=5, epoch=5, path="/o/5", chosen=True)

    def choose_step_6():
        run.scores.update(chosen=False)
        run.scores.filter(step=6).update(chosen=True)

    assert not refused(choose_step_6)
    chosen = CheckpointScore.objects.filter(chosen=True).values_list("path", flat=True)
    assert sorted(chosen) == ["/c/6", "/o/5"]


# ---------------------------------------------------------------- the migration


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def old_training_run(apps, chosen_checkpoint: str):
    get = apps.get_model
    project = get("annotation", "Project").objects.create(name="lab")
    annotator = get("annotation", "Annotator").objects.create(kind="judge", name="chatgpt")
    judge = get("inference", "Judge").objects.create(
        project=project, name="chatgpt", annotator=annotator, template_version="v1"
    )
    return get("inference", "TrainingRun").objects.create(
        project=project,
        name="lima",
        training_set=get("inference", "TrainingSet").objects.create(project=project, name="t"),
        base_model="/models/base",
        dev_set=get("annotation", "PromptSet").objects.create(project=project, name="dev"),
        judge=judge,
        chosen_checkpoint=chosen_checkpoint,
    )


def old_scores(apps, run, paths):
    scores = apps.get_model("inference", "CheckpointScore").objects
    for step, path in enumerate(paths):
        scores.create(run=run, step=step, epoch=step, path=path, chosen=True)


@pytest.mark.django_db(transaction=True)
def test_it_keeps_the_checkpoint_a_run_registered_when_several_were_chosen():
    apps = migrate(BEFORE)
    try:
        run = old_training_run(apps, chosen_checkpoint="/c/1")
        old_scores(apps, run, ["/c/0", "/c/1"])
    finally:
        migrate(latest())

    chosen = CheckpointScore.objects.filter(run_id=run.pk, chosen=True)
    assert list(chosen.values_list("path", flat=True)) == ["/c/1"]


@pytest.mark.django_db(transaction=True)
def test_it_stops_naming_the_rows_it_cannot_mend():
    apps = migrate(BEFORE)
    run = old_training_run(apps, chosen_checkpoint="")
    old_scores(apps, run, ["/c/0", "/c/1"])
    round_ = apps.get_model("annotation", "Round").objects.create(
        project=run.project,
        name="r",
        prompt_set=run.dev_set,
        candidate_id=_model(apps, run),
        seed=1,
    )
    task = apps.get_model("inference", "GenerationTask").objects.create(
        run=apps.get_model("inference", "GenerationRun").objects.create(round=round_, seed=1),
        model_id=round_.candidate_id,
        queue="api",
        needed=1,
        done=3,
    )
    try:
        with pytest.raises(RuntimeError) as stopped:
            migrate(latest())

        assert f"id {task.pk} (done=3, needed=1)" in str(stopped.value)
        assert f"run {run.pk} (2 chosen checkpoints)" in str(stopped.value)
        applied = MigrationExecutor(connection).loader.applied_migrations
        assert ("inference", "0006_integrity_constraints") not in applied
    finally:
        apps = migrate(BEFORE)
        apps.get_model("inference", "GenerationTask").objects.update(done=1)
        apps.get_model("inference", "CheckpointScore").objects.filter(step=0).update(chosen=False)
        migrate(latest())


def _model(apps, run):
    return (
        apps.get_model("annotation", "LanguageModel")
        .objects.create(project=run.project, name="c")
        .pk
    )
