"""Executing a training run on a `train` worker: checks that fail fast (base model, data, dev set,
judge key, memory), training (in the worker's process, or under `accelerate launch` for several
GPUs), then checkpoint selection and the registration of the chosen checkpoint as a model.
"""

import gc
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Value, When
from django.utils import timezone

from annotation.models import LanguageModel, PromptSet
from inference.backends.base import BackendConfigError
from inference.clients.openai_compat import MissingApiKey, OpenAICompatClient
from inference.generation.services import GenerationInvalid, model_register
from inference.judge.calls import judge_client
from inference.judge.models import Judge
from inference.judge.prompts import TEMPLATES
from inference.runs import Heartbeat, Lease, lease_claim, lease_is_live
from inference.training import selection
from inference.training.data import TrainingDataInvalid
from inference.training.dropout import UnsupportedArchitecture
from inference.training.models import CheckpointScore, TrainingRun
from inference.training.recipe import Recipe, RecipeInvalid
from inference.training.selectors import training_dir, training_examples
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
LIVE = (Status.RUNNING, Status.SELECTING)
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


class TrainingBusy(Exception):
    """Another live worker is executing the run."""


def training_run_execute(*, run_id: int) -> TrainingRun:
    """Check, train (or continue training), select a checkpoint and register it.

    Safe to run twice: a run another live worker executes raises TrainingBusy; a finished or
    cancelled one is left alone; an abandoned one continues from its last checkpoint and
    keeps the checkpoint scores already made.
    """
    lease = lease_claim(
        TrainingRun,
        run_id,
        claimable=(Status.QUEUED,),
        live=LIVE,
        # A run abandoned while selecting goes on selecting: its training is done.
        status=Case(
            When(status=Status.SELECTING, then=Value(Status.SELECTING)),
            default=Value(Status.RUNNING),
        ),
        message="",
    )
    if lease is None:
        run = TrainingRun.objects.get(pk=run_id)
        if lease_is_live(run, LIVE):
            raise TrainingBusy(f"training run {run_id} is running on {run.worker}")
        return run
    TrainingRun.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=timezone.now())
    with Heartbeat(lease):
        try:
            _execute(run_id, lease)
        except EXPECTED as problem:
            lease.finish(Status.FAILED, str(problem))
        except Exception as error:
            logger.exception("training run %s stopped on an unexpected error", run_id)
            lease.finish(Status.FAILED, f"Stopped on an unexpected error: {error}")
    return TrainingRun.objects.get(pk=run_id)


def _cancelled(run_id: int) -> bool:
    return TrainingRun.objects.filter(pk=run_id, status=Status.CANCELLED).exists()


def _execute(run_id: int, lease: Lease) -> None:
    run = TrainingRun.objects.select_related("judge", "dev_set", "project").get(pk=run_id)
    plan = _preflight(run)
    if run.status == Status.RUNNING:
        if not training_finished(Path(run.output_dir)):
            if plan.resolved.launcher == "accelerate":
                _train_with_accelerate(run, plan)
            else:
                training_run_train_process(run_id=run.pk)
                _release_memory()
        running = TrainingRun.objects.filter(pk=run_id, worker=lease.worker, status=Status.RUNNING)
        if not running.update(status=Status.SELECTING):
            return  # cancelled meanwhile
    _select_and_register(run, plan, lease)


def _judge_client(judge: Judge) -> OpenAICompatClient:
    try:
        return judge_client(judge)
    except MissingApiKey as problem:
        raise TrainingInvalid(
            f"Checkpoint selection needs the judge's key: {problem} (checked before training "
            "so that the run does not fail after it)."
        ) from None


def _preflight(run: TrainingRun) -> TrainingPlan:
    """Every check that can fail before hours are spent; the plan is stored with the run."""
    recipe = Recipe.from_overrides(run.recipe)
    examples = training_examples(run.training_set_id)
    if not examples:
        raise TrainingInvalid(f"The training set {run.training_set} has no examples.")
    if not run.dev_set.prompts.exists():
        raise TrainingInvalid(f"The dev set {run.dev_set} is empty: add prompts to select with.")
    if run.judge.mode != Judge.Mode.HELPFULNESS:
        raise TrainingInvalid(f"The judge {run.judge} is not in helpfulness mode.")
    _judge_client(run.judge).close()
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
        examples=training_examples(run.training_set_id),
        plan=plan,
        output_dir=output_dir,
        report=_Reporter(run, resume),
        should_stop=lambda: _cancelled(run_id),
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
    if finished.returncode != 0 and not _cancelled(run.pk):
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise TrainingInvalid(
            f"accelerate launch exited with status {finished.returncode}; the end of {log}:\n{tail}"
        )


# ---------------------------------------------------------------- checkpoint selection


def helpfulness_judge(judge: Judge) -> selection.HelpfulnessJudge:
    """The judge as the selection rates with it; the experiments' scoring rates the same way."""
    return selection.HelpfulnessJudge(
        client=_judge_client(judge),
        template=TEMPLATES[judge.template_version],
        model=judge.model,
        temperature=judge.temperature,
        max_tokens=judge.max_tokens,
        max_attempts=judge.max_attempts,
        max_concurrency=judge.max_concurrency,
        structured=judge.structured_output,
    )


def dev_prompts(dev_set: PromptSet) -> list[selection.DevPrompt]:
    """The dev set's prompts in order, with the turns after the first (multi-turn prompts)."""
    return [
        selection.DevPrompt(
            key=prompt.pk,
            external_id=prompt.external_id,
            text=prompt.text,
            turns=tuple(prompt.extra.get("conversations") or ()),
        )
        for prompt in dev_set.prompts.order_by("position")
    ]


def _machine_memory() -> tuple[list[int], int]:
    """Each visible GPU's memory and the machine's RAM, in bytes."""
    import torch

    gpus = [
        torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())
    ]
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return gpus, ram


def _select_and_register(run: TrainingRun, plan: TrainingPlan, lease: Lease) -> None:
    recipe = plan.resolved
    output_dir = Path(run.output_dir)
    candidates = finish_checkpoints(output_dir, keep_epochs=recipe.selection_epochs)
    if not candidates:
        found = ", ".join(f"epoch {c.epoch} (step {c.step})" for c in checkpoints(output_dir))
        raise TrainingInvalid(
            f"No checkpoint of epochs {recipe.select_from_epoch}-{recipe.select_to_epoch} "
            f"in {output_dir} (found: {found or 'none'})."
        )
    prompts = dev_prompts(run.dev_set)
    backend = selection.selection_backend(recipe.selection_backend)
    gpus, ram = _machine_memory()
    problem = selection.serving_fit_problem(
        weights_fp32_bytes=selection.checkpoint_bytes(candidates[0].path),
        backend=backend,
        serving=recipe.selection_serving,
        gpu_bytes=gpus,
        ram_bytes=ram,
    )
    if problem:
        raise TrainingInvalid(problem)
    judge = helpfulness_judge(run.judge)
    # Checkpoints fully scored before a restart are not asked again; the others are.
    done = set(run.scores.filter(failed=0).values_list("step", flat=True))
    try:
        for number, checkpoint in enumerate(candidates, start=1):
            if checkpoint.step in done:
                continue
            if _cancelled(run.pk):
                return
            answers = selection.answer_dev_set(
                checkpoint=str(checkpoint.path),
                prompts=prompts,
                backend=backend,
                end_of_turn=recipe.end_of_turn,
                sampling=recipe.selection_sampling,
                seed=recipe.seed,
                serving=recipe.selection_serving,
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
        judge.client.close()
    _register_best(run, recipe, lease)


def _register_best(run: TrainingRun, recipe: Recipe, lease: Lease) -> None:
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
        TrainingRun.objects.filter(pk=run.pk, worker=lease.worker).exclude(
            status=Status.CANCELLED
        ).update(chosen_checkpoint=best.path, registered_model=model, finished_at=timezone.now())
        lease.finish(
            Status.DONE, f"Chose epoch {best.epoch} (mean helpfulness {best.mean_score:.2f})."
        )
