"""Actions on training sets and runs: upload, launch, cancel, resume.

The page, the API and the commands call these. A launched run is queued on the `train` queue,
where `worker.training_run_execute` trains, selects a checkpoint and registers it.
"""

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from annotation.models import LanguageModel, Project, PromptSet
from inference.judge.models import Judge
from inference.runs import lease_is_live
from inference.training.data import Example, estimated_tokens, length_stats, parse_training_file
from inference.training.models import TrainingExample, TrainingRun, TrainingSet
from inference.training.recipe import Recipe, RecipeInvalid
from inference.training.selectors import training_dir
from inference.training.tasks import train_model
from inference.training.trainer import TrainingInvalid, encode_examples, load_tokenizer

Status = TrainingRun.Status
ACTIVE = (Status.QUEUED, Status.RUNNING, Status.SELECTING)
LIVE = (Status.RUNNING, Status.SELECTING)


class TrainingRejected(ValueError):
    """The upload or launch is refused as asked; the message says what to change."""


# ---------------------------------------------------------------- training sets


def training_set_stats(
    examples: Sequence[Example], *, tokenizer: str = "", max_length: int = 2048
) -> dict[str, Any]:
    """Counts and token lengths: exact with a tokenizer (a folder or hub id), else estimated."""
    if tokenizer:
        try:
            loaded = load_tokenizer(tokenizer)
        except TrainingInvalid as problem:
            raise TrainingRejected(str(problem)) from None
        _, stats = encode_examples(
            loaded, examples, end_of_turn=Recipe().end_of_turn, max_length=max_length
        )
        return stats.as_dict()
    # One token per turn for the end-of-turn marker, one for the start.
    lengths = [1 + sum(estimated_tokens(t) + 1 for t in e.conversations) for e in examples]
    starts = [2 + estimated_tokens(e.conversations[0]) for e in examples]
    stats = length_stats(
        examples,
        lengths,
        max_length=max_length,
        tokenizer="estimate (4 characters a token)",
        answer_starts=starts,
    )
    return stats.as_dict()


@transaction.atomic
def training_set_upload(
    *,
    project: Project,
    name: str,
    raw: bytes,
    file_name: str = "the file",
    tokenizer: str = "",
    max_length: int = 2048,
    user: User | AnonymousUser | None = None,
) -> TrainingSet:
    """Import a JSON Lines file: every line checked first, nothing kept if any is bad."""
    name = name.strip()
    if not name:
        raise TrainingRejected("Give the training set a name.")
    if TrainingSet.objects.filter(project=project, name=name).exists():
        raise TrainingRejected(f"Project {project.name!r} already has a training set {name!r}.")
    examples = parse_training_file(raw, file_name)
    stats = training_set_stats(examples, tokenizer=tokenizer, max_length=max_length)
    training_set = TrainingSet.objects.create(
        project=project,
        name=name,
        original_name=file_name,
        stats=stats,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    TrainingExample.objects.bulk_create(
        [
            TrainingExample(
                training_set=training_set,
                line=example.line,
                conversations=list(example.conversations),
                source=example.source[:200],
            )
            for example in examples
        ],
        batch_size=1000,
    )
    return training_set


# ---------------------------------------------------------------- launching


@transaction.atomic
def training_run_launch(
    *,
    project: Project,
    name: str,
    training_set: TrainingSet,
    base_model: str,
    dev_set: PromptSet,
    judge: Judge,
    recipe: dict[str, Any] | None = None,
    user: User | AnonymousUser | None = None,
    enqueue: bool = True,
) -> TrainingRun:
    """Queue a fine-tune on the `train` queue, after the checks that need no GPU.

    `enqueue=False` leaves it queued for `training_run_execute` in this process instead.
    """
    name = name.strip()
    base_model = base_model.strip()
    problems = []
    if not name:
        problems.append("Give the run a name (also the name of the model it registers).")
    elif TrainingRun.objects.filter(project=project, name=name).exists():
        problems.append(f"Project {project.name!r} already has a training run {name!r}.")
    elif LanguageModel.objects.filter(project=project, name=name).exists():
        problems.append(
            f"Project {project.name!r} already has a model {name!r}: the run registers its "
            "chosen checkpoint under its own name, so give it another."
        )
    if not base_model:
        problems.append("Give the base model: a checkpoint folder on the workers or a hub id.")
    for thing in (training_set, dev_set, judge):
        if thing.project_id != project.pk:
            problems.append(f"{thing} belongs to another project.")
    if not training_set.examples.exists():
        problems.append(f"The training set {training_set.name!r} has no examples.")
    if not dev_set.prompts.exists():
        problems.append(
            f"The dev set {dev_set.name!r} is empty: checkpoint selection needs prompts "
            "(the paper used 50)."
        )
    if judge.mode != Judge.Mode.HELPFULNESS:
        problems.append(
            f"The judge {judge.name!r} works in mode {judge.mode!r}: checkpoint selection needs "
            f"a judge in mode {Judge.Mode.HELPFULNESS.value!r} (helpfulness 1-6)."
        )
    try:
        Recipe.from_overrides(recipe)
    except (RecipeInvalid, TypeError) as problem:
        problems.append(str(problem))
    if problems:
        raise TrainingRejected(" ".join(problems))
    run = TrainingRun.objects.create(
        project=project,
        name=name,
        training_set=training_set,
        base_model=base_model,
        dev_set=dev_set,
        judge=judge,
        recipe=dict(recipe or {}),
        created_by=user if user is not None and user.is_authenticated else None,
    )
    run.output_dir = str(training_dir() / f"run-{run.pk}")
    run.save(update_fields=["output_dir"])
    if enqueue:
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _enqueue(run_id: int) -> None:
    train_model.delay(run_id)


def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """Stop the run: a queued run never starts; a running one saves a checkpoint and stops
    within seconds, and can be resumed from it."""
    TrainingRun.objects.filter(pk=run.pk, status__in=ACTIVE).update(
        status=Status.CANCELLED,
        message="Cancelled; resume to continue from the last checkpoint.",
        finished_at=timezone.now(),
    )
    run.refresh_from_db()
    return run


@transaction.atomic
def training_run_resume(*, run: TrainingRun, enqueue: bool = True) -> TrainingRun:
    """Queue a cancelled, failed or abandoned run again; it continues from its last checkpoint."""
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.status == Status.DONE:
        raise TrainingRejected("The run is done: its model is registered.")
    if lease_is_live(run, LIVE) or run.status == Status.QUEUED:
        return run
    selecting = run.status == Status.SELECTING
    run.status = Status.SELECTING if selecting else Status.QUEUED
    run.message = ""
    run.finished_at = None
    if selecting:
        # Abandoned while selecting: stale, so the next worker takes it over where it was.
        run.heartbeat_at = None
    run.save(update_fields=["status", "message", "finished_at", "heartbeat_at"])
    if enqueue:
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run
