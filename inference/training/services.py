"""Actions on training sets and runs: upload, launch, cancel, resume, and the worker's execution.

The page, the API and the commands call these. A run is executed by `training_run_execute` on
a worker of the `train` queue: checks that fail fast (base model, data, dev set, judge key,
memory), training (in the worker's process, or under `accelerate launch` for several GPUs),
then checkpoint selection and the registration of the chosen checkpoint as a model.
"""

import gc
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone

from annotation.models import LanguageModel, Project, PromptSet
from inference.backends import BackendConfigError
from inference.generation import GenerationInvalid, model_register
from inference.judge.endpoint import ChatEndpoint, MissingApiKey, api_key_from_env
from inference.judge.prompts import TEMPLATES
from inference.models import CheckpointScore, Judge, TrainingExample, TrainingRun, TrainingSet
from inference.ratelimit import budget_name, rate_limiter
from inference.training import selection
from inference.training.data import (
    Example,
    TrainingDataInvalid,
    estimated_tokens,
    length_stats,
    parse_training_file,
)
from inference.training.dropout import UnsupportedArchitecture
from inference.training.recipe import Recipe, RecipeInvalid
from inference.training.trainer import (
    Checkpoint,
    Outcome,
    Progress,
    TrainingInvalid,
    TrainingPlan,
    accelerate_config_path,
    checkpoints,
    encode_examples,
    finish_checkpoints,
    last_checkpoint,
    load_config,
    load_tokenizer,
    plan_training,
    train,
    training_finished,
)

logger = logging.getLogger(__name__)

Status = TrainingRun.Status
ACTIVE = (Status.QUEUED, Status.RUNNING, Status.SELECTING)
# A run whose worker has not written for this long is taken to be dead and may be taken over.
HEARTBEAT_STALE = timedelta(minutes=5)
HEARTBEAT_SECONDS = 30.0
# Progress is written at most this often (and always at the last step).
PROGRESS_EVERY_SECONDS = 1.0
# Problems of the worker's environment that stop a run with a message, not a traceback.
EXPECTED = (
    TrainingInvalid,
    RecipeInvalid,
    TrainingDataInvalid,
    UnsupportedArchitecture,
    BackendConfigError,
    MissingApiKey,
)


class TrainingRejected(ValueError):
    """The upload or launch is refused as asked; the message says what to change."""


class TrainingBusy(Exception):
    """Another live worker is executing the run."""


def training_dir() -> Path:
    return Path(getattr(settings, "TRAINING_DIR", settings.VAR_DIR / "training"))


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
    user: AbstractBaseUser | None = None,
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


def _examples(training_set_id: int) -> list[Example]:
    rows = TrainingExample.objects.filter(training_set_id=training_set_id).order_by("line")
    return [Example(row.line, tuple(row.conversations), row.source) for row in rows]


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
    user: AbstractBaseUser | None = None,
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
    from inference.training.tasks import train_model

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


def _is_live(run: TrainingRun) -> bool:
    return (
        run.status in (Status.RUNNING, Status.SELECTING)
        and run.heartbeat_at is not None
        and run.heartbeat_at > timezone.now() - HEARTBEAT_STALE
    )


@transaction.atomic
def training_run_resume(*, run: TrainingRun, enqueue: bool = True) -> TrainingRun:
    """Queue a cancelled, failed or abandoned run again; it continues from its last checkpoint."""
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.status == Status.DONE:
        raise TrainingRejected("The run is done: its model is registered.")
    if _is_live(run) or run.status == Status.QUEUED:
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


# ---------------------------------------------------------------- executing


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claim(run_id: int, worker: str) -> bool:
    now = timezone.now()
    stale = Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - HEARTBEAT_STALE)
    return bool(
        TrainingRun.objects.filter(pk=run_id)
        .filter(
            Q(status=Status.QUEUED) | (Q(status__in=[Status.RUNNING, Status.SELECTING]) & stale)
        )
        .update(
            status=Case(
                When(status=Status.SELECTING, then=Value(Status.SELECTING)),
                default=Value(Status.RUNNING),
            ),
            worker=worker,
            heartbeat_at=now,
            message="",
        )
    )


def _status(run_id: int) -> str:
    return TrainingRun.objects.values_list("status", flat=True).get(pk=run_id)


def _finish(run_id: int, worker: str, status: str, message: str) -> None:
    # A cancel wins over whatever the worker was about to write.
    TrainingRun.objects.filter(pk=run_id, worker=worker).exclude(status=Status.CANCELLED).update(
        status=status, message=message, finished_at=timezone.now()
    )


class _Heartbeat:
    """Writes the run's heartbeat from a thread while the worker loads, trains or selects."""

    def __init__(self, run_id: int, worker: str, every: float = HEARTBEAT_SECONDS) -> None:
        self.run_id, self.worker, self.every = run_id, worker, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.every):
                TrainingRun.objects.filter(pk=self.run_id, worker=self.worker).update(
                    heartbeat_at=timezone.now()
                )
        finally:
            connection.close()


def training_run_execute(*, run_id: int) -> TrainingRun:
    """Check, train (or continue training), select a checkpoint and register it.

    Safe to run twice: a run another live worker executes raises TrainingBusy; a finished or
    cancelled one is left alone; an abandoned one continues from its last checkpoint and
    keeps the checkpoint scores already made.
    """
    worker = _worker_name()
    if not _claim(run_id, worker):
        run = TrainingRun.objects.get(pk=run_id)
        if _is_live(run):
            raise TrainingBusy(f"training run {run_id} is running on {run.worker}")
        return run
    TrainingRun.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=timezone.now())
    with _Heartbeat(run_id, worker):
        try:
            _execute(run_id, worker)
        except EXPECTED as problem:
            _finish(run_id, worker, Status.FAILED, str(problem))
        except Exception as error:
            logger.exception("training run %s stopped on an unexpected error", run_id)
            _finish(run_id, worker, Status.FAILED, f"Stopped on an unexpected error: {error}")
    return TrainingRun.objects.get(pk=run_id)


def _execute(run_id: int, worker: str) -> None:
    run = TrainingRun.objects.select_related("judge", "dev_set", "project").get(pk=run_id)
    plan = _preflight(run)
    if run.status == Status.RUNNING:
        if not training_finished(Path(run.output_dir)):
            if plan.resolved.launcher == "accelerate":
                _train_with_accelerate(run, plan)
            else:
                training_run_train_process(run_id=run.pk)
                _release_memory()
        running = TrainingRun.objects.filter(pk=run_id, worker=worker, status=Status.RUNNING)
        if not running.update(status=Status.SELECTING):
            return  # cancelled meanwhile
    _select_and_register(run, plan, worker)


def _judge_key(judge: Judge) -> str:
    try:
        return api_key_from_env(judge.api_key_env)
    except MissingApiKey as problem:
        raise TrainingInvalid(
            f"Checkpoint selection needs the judge's key: {problem} (checked before training "
            "so that the run does not fail after it)."
        ) from None


def _preflight(run: TrainingRun) -> TrainingPlan:
    """Every check that can fail before hours are spent; the plan is stored with the run."""
    recipe = Recipe.from_overrides(run.recipe)
    examples = _examples(run.training_set_id)
    if not examples:
        raise TrainingInvalid(f"The training set {run.training_set} has no examples.")
    if not run.dev_set.prompts.exists():
        raise TrainingInvalid(f"The dev set {run.dev_set} is empty: add prompts to select with.")
    if run.judge.mode != Judge.Mode.HELPFULNESS:
        raise TrainingInvalid(f"The judge {run.judge} is not in helpfulness mode.")
    _judge_key(run.judge)
    output_dir = Path(run.output_dir or training_dir() / f"run-{run.pk}")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TrainingInvalid(
            f"Cannot write checkpoints to {output_dir}: {error}. Set TRAINING_DIR to a "
            "writable folder that the GPU workers can read too."
        ) from None
    if run.plan.get("training"):
        # Resumed: the batch split that the checkpoints were made with.
        return TrainingPlan.from_dict(run.plan["training"])
    config = load_config(run.base_model)
    tokenizer = load_tokenizer(run.base_model)
    _, stats = encode_examples(
        tokenizer, examples, end_of_turn=recipe.end_of_turn, max_length=recipe.max_length
    )
    if stats.trimmed_to_nothing == stats.examples:
        raise TrainingInvalid(
            f"Every example's first answer starts after max_length={recipe.max_length} tokens: "
            "nothing would be learnt."
        )
    plan = plan_training(config=config, recipe=recipe)
    TrainingRun.objects.filter(pk=run.pk).update(
        plan={"training": plan.as_dict(), "data": stats.as_dict()},
        output_dir=str(output_dir),
    )
    run.refresh_from_db()
    return plan


def _release_memory() -> None:
    gc.collect()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class _Reporter:
    """Writes each step's figures and the loss curve to the run, at most once a second."""

    def __init__(self, run: TrainingRun, resumed_from: Checkpoint | None) -> None:
        self.run_id = run.pk
        # The curve up to the checkpoint, as the Trainer logged it there.
        self.history = []
        if resumed_from is not None:
            state = json.loads((resumed_from.path / "trainer_state.json").read_text())
            self.history = [
                [entry["step"], round(entry["loss"], 5), entry.get("learning_rate")]
                for entry in state.get("log_history", [])
                if "loss" in entry
            ]
        self.written_at = 0.0
        self.note = {"note": run.progress["note"]} if (run.progress or {}).get("note") else {}

    def __call__(self, progress: Progress) -> None:
        import time

        self.history.append([progress.step, round(progress.loss, 5), progress.learning_rate])
        now = time.monotonic()
        if now - self.written_at < PROGRESS_EVERY_SECONDS and progress.step < progress.max_steps:
            return
        self.written_at = now
        TrainingRun.objects.filter(pk=self.run_id).update(
            progress={**progress.as_dict(), "history": self.history, **self.note},
            heartbeat_at=timezone.now(),
        )


def training_run_train_process(*, run_id: int) -> Outcome:
    """One training process: the worker's own, or one rank under `accelerate launch`."""
    run = TrainingRun.objects.get(pk=run_id)
    plan = TrainingPlan.from_dict(run.plan["training"])
    output_dir = Path(run.output_dir)
    resume = last_checkpoint(output_dir)
    if resume is None and (run.progress or {}).get("step"):
        # Never silently: the page shows that the steps before the crash are lost.
        note = (
            f"Started again from step 0 at {timezone.now():%Y-%m-%d %H:%M}: the worker stopped at "
            f"step {run.progress['step']} before any checkpoint was saved (one is saved at each "
            "epoch's end; save_every_steps adds more)."
        )
        TrainingRun.objects.filter(pk=run.pk).update(progress={"note": note})
        run.progress = {"note": note}
    return train(
        base_model=run.base_model,
        examples=_examples(run.training_set_id),
        plan=plan,
        output_dir=output_dir,
        report=_Reporter(run, resume),
        should_stop=lambda: _status(run_id) == Status.CANCELLED,
    )


def accelerate_command(run: TrainingRun, plan: TrainingPlan) -> list[str]:
    recipe = plan.resolved
    launcher = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    config = accelerate_config_path(recipe.accelerate_config)
    return [
        launcher,
        "launch",
        "--config_file",
        str(config),
        "--num_processes",
        str(recipe.num_processes),
        str(Path(settings.BASE_DIR) / "manage.py"),
        "train",
        "--process",
        str(run.pk),
    ]


def _train_with_accelerate(run: TrainingRun, plan: TrainingPlan) -> None:
    """Every process of this machine under `accelerate launch`; their output in train.log."""
    log = Path(run.output_dir) / "train.log"
    with log.open("a") as output:
        finished = subprocess.run(
            accelerate_command(run, plan),
            cwd=settings.BASE_DIR,
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if finished.returncode != 0 and _status(run.pk) != Status.CANCELLED:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise TrainingInvalid(
            f"accelerate launch exited with status {finished.returncode}; the end of {log}:\n{tail}"
        )


# ---------------------------------------------------------------- checkpoint selection


def _helpfulness_judge(judge: Judge) -> selection.HelpfulnessJudge:
    endpoint = ChatEndpoint(
        base_url=judge.base_url,
        api_key=_judge_key(judge),
        timeout=judge.timeout_seconds,
        max_concurrency=judge.max_concurrency,
        limiter=rate_limiter(
            name=budget_name(
                base_url=judge.base_url, api_key_env=judge.api_key_env, model=judge.model
            ),
            rpm=judge.rpm_limit,
            tpm=judge.tpm_limit,
        ),
    )
    return selection.HelpfulnessJudge(
        endpoint=endpoint,
        template=TEMPLATES[judge.template_version],
        model=judge.model,
        temperature=judge.temperature,
        max_tokens=judge.max_tokens,
        max_attempts=judge.max_attempts,
        max_concurrency=judge.max_concurrency,
        structured=judge.structured_output,
    )


def _dev_prompts(dev_set: PromptSet) -> list[selection.DevPrompt]:
    return [
        selection.DevPrompt(
            key=prompt.pk,
            external_id=prompt.external_id,
            text=prompt.text,
            turns=tuple(prompt.extra.get("conversations") or ()),
        )
        for prompt in dev_set.prompts.order_by("position")
    ]


def _select_and_register(run: TrainingRun, plan: TrainingPlan, worker: str) -> None:
    recipe = plan.resolved
    output_dir = Path(run.output_dir)
    candidates = finish_checkpoints(output_dir, keep_epochs=recipe.selection_epochs)
    if not candidates:
        found = ", ".join(f"epoch {c.epoch} (step {c.step})" for c in checkpoints(output_dir))
        raise TrainingInvalid(
            f"No checkpoint of epochs {recipe.select_from_epoch}-{recipe.select_to_epoch} "
            f"in {output_dir} (found: {found or 'none'})."
        )
    prompts = _dev_prompts(run.dev_set)
    backend = selection.selection_backend(recipe.selection_backend)
    judge = _helpfulness_judge(run.judge)
    # Checkpoints fully scored before a restart are not asked again; the others are.
    done = set(run.scores.filter(failed=0).values_list("step", flat=True))
    try:
        for number, checkpoint in enumerate(candidates, start=1):
            if checkpoint.step in done:
                continue
            if _status(run.pk) == Status.CANCELLED:
                return
            answers = selection.answer_dev_set(
                checkpoint=str(checkpoint.path),
                prompts=prompts,
                backend=backend,
                end_of_turn=recipe.end_of_turn,
                sampling=recipe.selection_sampling,
                seed=recipe.seed,
            )
            verdict = selection.rate_checkpoint(
                selection.CheckpointVerdict(
                    checkpoint.step, checkpoint.epoch, str(checkpoint.path)
                ),
                prompts,
                answers,
                judge,
            )
            CheckpointScore.objects.update_or_create(
                run=run,
                step=checkpoint.step,
                defaults={
                    "epoch": checkpoint.epoch,
                    "path": str(checkpoint.path),
                    "mean_score": verdict.mean_score,
                    "scored": len(verdict.scores),
                    "failed": verdict.failed,
                    "samples": [s.as_dict() for s in verdict.samples],
                },
            )
            progress = TrainingRun.objects.values_list("progress", flat=True).get(pk=run.pk)
            TrainingRun.objects.filter(pk=run.pk).update(
                progress={**progress, "selection": {"done": number, "total": len(candidates)}},
                heartbeat_at=timezone.now(),
            )
    finally:
        judge.endpoint.close()
    _register_best(run, recipe, worker)


def _register_best(run: TrainingRun, recipe: Recipe, worker: str) -> None:
    scores = list(run.scores.filter(mean_score__isnull=False).order_by("-mean_score", "step"))
    if not scores:
        errors = {
            sample["error"]
            for score in run.scores.all()
            for sample in score.samples
            if sample.get("error")
        }
        raise TrainingInvalid(
            "The judge scored no answer of any checkpoint: "
            + ("; ".join(sorted(errors)[:5]) or "no answers")
        )
    best = scores[0]
    with transaction.atomic():
        existing = LanguageModel.objects.filter(project=run.project, name=run.name).first()
        if existing is not None and existing.pk != run.registered_model_id:
            raise TrainingInvalid(
                f"A model named {run.name!r} appeared in the project while the run trained; the "
                f"chosen checkpoint is {best.path}: register it under another name."
            )
        try:
            model = model_register(
                project=run.project,
                name=run.name,
                backend=LanguageModel.Backend.VLLM,
                config={"model": best.path, "end_of_turn": recipe.end_of_turn},
            )
        except GenerationInvalid as invalid:
            raise TrainingInvalid(str(invalid)) from None
        run.scores.update(chosen=False)
        run.scores.filter(pk=best.pk).update(chosen=True)
        TrainingRun.objects.filter(pk=run.pk, worker=worker).exclude(
            status=Status.CANCELLED
        ).update(
            status=Status.DONE,
            chosen_checkpoint=best.path,
            registered_model=model,
            message=f"Chose epoch {best.epoch} (mean helpfulness {best.mean_score:.2f}).",
            finished_at=timezone.now(),
        )
