"""Actions on ablation experiments: create and queue, cancel, resume.

The page, the API and the command call these. A queued experiment runs on the `train` queue,
where `worker.experiment_execute` trains each candidate, has it answer the dev prompts and has
the judge score every answer.
"""

import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from annotation.models import LanguageModel, Project, PromptSet
from inference.backends.base import BackendConfigError, SamplingSettings
from inference.experiments.models import Experiment, ExperimentArm
from inference.experiments.tasks import run_experiment
from inference.judge.models import Judge
from inference.runs import (
    enqueue,
    lease_is_live,
    leases_requeue_lost,
    new_task_id,
    queued_marker,
)
from inference.training.models import TrainingRun, TrainingSet
from inference.training.recipe import Recipe, RecipeInvalid
from inference.training.services import training_run_cancel

Status = Experiment.Status
LIVE = (Status.RUNNING,)
QUEUE = "train"


class ExperimentRejected(ValueError):
    """The experiment cannot be created or changed as asked; the message says what to change."""


@transaction.atomic
def experiment_create(
    *,
    project: Project,
    name: str,
    base_model: str,
    dev_set: PromptSet,
    judge: Judge,
    training_sets: Sequence[TrainingSet],
    labels: Sequence[str] = (),
    axis: str = Experiment.Axis.SETS,
    samples_per_prompt: int = 5,
    seed: int | None = None,
    recipe: dict[str, Any] | None = None,
    sampling: dict[str, Any] | None = None,
    user: User | AnonymousUser | None = None,
    enqueue_task: bool = True,
) -> Experiment:
    """Record the experiment with an arm per training set and queue it on the `train` queue;
    every check that needs no GPU is made here, all problems named at once, nothing kept.
    `enqueue_task=False` leaves it queued for `experiment_execute` in this process."""
    name, base_model = name.strip(), base_model.strip()
    labels = [label.strip() for label in labels] or [ts.name for ts in training_sets]
    problems = []
    if not name:
        problems.append("Give the experiment a name.")
    elif Experiment.objects.filter(project=project, name=name).exists():
        problems.append(f"Project {project.name!r} already has an experiment {name!r}.")
    if not base_model:
        problems.append("Give the base model: a checkpoint folder on the workers or a hub id.")
    if not training_sets:
        problems.append("Give at least one training set.")
    if len({ts.pk for ts in training_sets}) != len(training_sets):
        problems.append("A training set is given twice.")
    if len(labels) != len(training_sets):
        problems.append(f"Give a label for each of the {len(training_sets)} training sets.")
    elif len(set(labels)) != len(labels) or not all(labels):
        problems.append("Each training set needs a label of its own.")
    owners = [(dev_set, dev_set.project_id), (judge, judge.project_id)]
    owners += [(training_set, training_set.project_id) for training_set in training_sets]
    for thing, project_id in owners:
        if project_id != project.pk:
            problems.append(f"{thing} belongs to another project.")
    if not dev_set.prompts.exists():
        problems.append(f"The dev set {dev_set.name!r} has no prompts (the paper used 50).")
    if judge.mode != Judge.Mode.HELPFULNESS:
        problems.append(
            f"The judge {judge.name!r} works in mode {judge.mode!r}: the experiment scores "
            f"answers with a judge in mode {Judge.Mode.HELPFULNESS.value!r} (helpfulness 1-6)."
        )
    if axis not in Experiment.Axis.values:
        problems.append(f"Unknown axis {axis!r}: use one of {', '.join(Experiment.Axis.values)}.")
    if not 1 <= samples_per_prompt <= 20:
        problems.append("Answers per dev prompt must be from 1 to 20 (the paper: 5).")
    try:
        Recipe.from_overrides(recipe)
    except (RecipeInvalid, TypeError) as problem:
        problems.append(f"recipe: {problem}")
    try:
        SamplingSettings.from_overrides(sampling)
    except (BackendConfigError, TypeError) as problem:
        problems.append(f"sampling: {problem}")
    for label, training_set in zip(labels, training_sets, strict=False):
        if not training_set.examples.exists():
            problems.append(f"The training set {training_set.name!r} has no examples.")
        run_name = Experiment(name=name).arm_run_name(label)
        taken = TrainingRun.objects.filter(project=project, name=run_name).exists()
        if taken or LanguageModel.objects.filter(project=project, name=run_name).exists():
            problems.append(
                f"Project {project.name!r} already has a training run or model {run_name!r}, "
                f"the name the {label!r} candidate would get: rename the experiment."
            )
    if problems:
        raise ExperimentRejected(" ".join(problems))
    experiment = Experiment.objects.create(
        project=project,
        name=name,
        base_model=base_model,
        dev_set=dev_set,
        judge=judge,
        axis=axis,
        samples_per_prompt=samples_per_prompt,
        seed=random.SystemRandom().randrange(2**31) if seed is None else seed,
        recipe=dict(recipe or {}),
        sampling=dict(sampling or {}),
        created_by=user if user is not None and user.is_authenticated else None,
    )
    ExperimentArm.objects.bulk_create(
        ExperimentArm(
            experiment=experiment,
            position=position,
            training_set=training_set,
            label=label,
            examples=training_set.examples.count(),
        )
        for position, (label, training_set) in enumerate(zip(labels, training_sets, strict=True))
    )
    if enqueue_task:
        _queue(experiment)
    return experiment


def _queue(experiment: Experiment) -> None:
    """Mark the experiment queued for a new task message, sent once the transaction commits."""
    task_id = new_task_id()
    Experiment.objects.filter(pk=experiment.pk).update(
        worker=queued_marker(task_id), heartbeat_at=timezone.now()
    )
    # Committed as queued first: if the broker is unreachable, this raises QueueUnavailable
    # and the sweeper sends the task once it is back.
    transaction.on_commit(lambda: enqueue(run_experiment, experiment.pk, task_id=task_id))


def experiments_requeue_lost() -> int:
    """Send again the task of every experiment whose task was lost (see `leases_requeue_lost`)."""
    lost = leases_requeue_lost(
        Experiment.objects.all(),
        queued=Status.QUEUED,
        live=LIVE,
        queues=[QUEUE],
        queued_for=timedelta(seconds=settings.RUN_REQUEUE_AFTER_SECONDS),
    )
    for experiment_id, task_id in lost:
        enqueue(run_experiment, experiment_id, task_id=task_id)
    return len(lost)


@transaction.atomic
def experiment_cancel(*, experiment: Experiment) -> Experiment:
    """Stop the experiment as a whole: a queued one never starts; a running one stops after
    the step it is in, and its candidate in training saves a checkpoint and stops."""
    Experiment.objects.filter(pk=experiment.pk, status__in=(Status.QUEUED, Status.RUNNING)).update(
        status=Status.CANCELLED, message="Cancelled; resume to go on where it stopped."
    )
    for run in TrainingRun.objects.filter(arm__experiment=experiment):
        if run.is_active:
            training_run_cancel(run=run)
    experiment.refresh_from_db()
    return experiment


@transaction.atomic
def experiment_resume(*, experiment: Experiment, enqueue_task: bool = True) -> Experiment:
    """Queue a cancelled, failed or abandoned experiment again: trained candidates and scored
    answers are kept, the rest is done."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status == Status.DONE:
        raise ExperimentRejected("The experiment is done: every candidate is trained and scored.")
    if experiment.status == Status.QUEUED or lease_is_live(experiment, LIVE):
        return experiment
    experiment.status, experiment.message, experiment.finished_at = Status.QUEUED, "", None
    experiment.save(update_fields=["status", "message", "finished_at"])
    if enqueue_task:
        _queue(experiment)
    return experiment
