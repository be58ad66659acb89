"""Generating a round's responses: launch, run one model's share on a worker, cancel, progress.

A launch creates a run with one task per model that has a generation backend, and queues each
task on its backend's queue (`gpu`, `api`, `default`) once the transaction commits. A task
asks its backend for every prompt of the round's set that the model has not answered yet with
the run's settings, writes the responses as they arrive (unique per prompt, model and settings
key, so a second delivery of the same task writes nothing twice) and creates the round's
comparison items as pairs complete.

A model's responses are kept per settings key (`backends.settings_key`: the sampling, the seed
and the model's options that shape the text). A round launched with the settings of an earlier
one reuses its responses; one launched with other settings gets its own beside them.
"""

import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from annotation.api import secret_config_keys
from annotation.models import Item, LanguageModel, Project, Prompt, Response, Round
from annotation.services import round_add_missing_items
from inference.backends import (
    QUEUES,
    BackendConfigError,
    GenerationRequest,
    GenerationResult,
    SamplingSettings,
    backend_check,
    backend_load,
    messages_for,
    prompt_seed,
    settings_key,
)
from inference.models import GenerationFailure, GenerationRun, GenerationTask

logger = logging.getLogger(__name__)

# Results are written in batches, at most this often, so that the database keeps up with an
# API backend returning hundreds of responses a second.
WRITE_EVERY_SECONDS = 0.5
WRITE_EVERY_RESULTS = 100

Status = GenerationRun.Status
FINISHED = (Status.DONE, Status.FAILED, Status.CANCELLED)


class GenerationInvalid(ValueError):
    """Generation cannot start as asked; the message says what to fix."""


# ---------------------------------------------------------------- models


@transaction.atomic
def model_register(
    *, project: Project, name: str, backend: str, config: Mapping[str, Any]
) -> LanguageModel:
    """Create a model with a generation backend, or update the backend of the one named so."""
    name = name.strip()
    if not name:
        raise GenerationInvalid("Give the model a name.")
    secrets = secret_config_keys(dict(config))
    if secrets:
        raise GenerationInvalid(
            f"The config must not hold secrets ({', '.join(secrets)}): put the key in an "
            'environment variable and name it instead, e.g. "api_key_env": "OPENAI_API_KEY".'
        )
    if backend != LanguageModel.Backend.IMPORTED:
        try:
            backend_check(backend, config)
        except BackendConfigError as error:
            raise GenerationInvalid(str(error)) from None
    model, _ = LanguageModel.objects.update_or_create(
        project=project, name=name, defaults={"backend": backend, "config": dict(config)}
    )
    return model


# ---------------------------------------------------------------- launching


def _round_models(round_: Round) -> list[LanguageModel]:
    return [round_.candidate, *round_.baselines.order_by("name")]


def _missing_prompts(model: LanguageModel, round_: Round, key: str):
    answered = Response.objects.filter(model=model, settings_key=key).values("prompt_id")
    return Prompt.objects.filter(prompt_set_id=round_.prompt_set_id).exclude(pk__in=answered)


def _model_key(model: LanguageModel, sampling: Mapping[str, Any] | None, seed: int) -> str:
    """The settings key of the responses a run with this sampling and seed makes."""
    effective = SamplingSettings.from_overrides(
        model.config.get("sampling"), sampling, {"seed": seed}
    )
    return settings_key(model.backend, model.config, effective)


def _compared_keys(round_: Round, model: LanguageModel) -> set[str]:
    """The settings keys of the model's responses that the round's items already show."""
    items = Item.objects.filter(round=round_)
    return set(
        Response.objects.filter(model=model)
        .filter(
            Q(pk__in=items.values("candidate_response"))
            | Q(pk__in=items.values("baseline_response"))
        )
        .values_list("settings_key", flat=True)
    )


def _models_to_generate(
    round_: Round, models: list[LanguageModel], keys: dict[int, str]
) -> list[LanguageModel]:
    """The models this launch generates for; a round never mixes a model's settings.

    A model whose items already show its imported responses stays compared on them; one whose
    items show responses made with other settings refuses the launch.
    """
    chosen, mixed = [], []
    for model in models:
        compared = _compared_keys(round_, model)
        if compared <= {keys[model.pk]}:
            chosen.append(model)
        elif compared != {""} or str(model.pk) in round_.response_keys:
            mixed.append(model.name)
    if mixed:
        last = round_.generation_runs.first()
        before = f" (sampling {last.sampling or 'the defaults'}, seed {last.seed})" if last else ""
        raise GenerationInvalid(
            f"Round {round_.name!r} already compares responses of {', '.join(map(repr, mixed))} "
            f"made with other settings: launch it with the same settings as before{before}, or "
            "create a new round for these."
        )
    return chosen


@transaction.atomic
def generation_launch(
    *,
    round_: Round,
    sampling: Mapping[str, Any] | None = None,
    seed: int | None = None,
    user: AbstractBaseUser | None = None,
) -> GenerationRun:
    """Queue the generation of every missing response of the round's models.

    Each generated model's responses are those made with this launch's settings (its settings
    key, recorded on the round): ones that exist already, from an earlier run or another round
    launched the same way, are reused. A run already queued or running is returned as it is
    (a second click launches nothing); after a failed, cancelled or finished run a new one with
    the same settings makes only what is still missing.
    """
    # Locked, so that two launches at once make one run; read afresh with its models.
    round_ = (
        Round.objects.select_for_update(of=("self",)).select_related("candidate").get(pk=round_.pk)
    )
    active = round_.generation_runs.filter(status__in=[Status.QUEUED, Status.RUNNING]).first()
    if active is not None:
        return active
    seed = round_.seed if seed is None else seed
    generated = [m for m in _round_models(round_) if m.backend != LanguageModel.Backend.IMPORTED]
    keys: dict[int, str] = {}
    problems = []
    for model in generated:
        try:
            keys[model.pk] = _model_key(model, sampling, seed)
        except BackendConfigError as error:
            problems.append(f"{model.name}: {error}")
    if problems:
        raise GenerationInvalid(" ".join(problems))
    try:
        SamplingSettings.from_overrides(sampling)
    except BackendConfigError as error:
        raise GenerationInvalid(f"Round sampling: {error}") from None
    generated = _models_to_generate(round_, generated, keys)

    run = GenerationRun.objects.create(
        round=round_,
        sampling=dict(sampling or {}),
        seed=seed,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    round_.response_keys = {
        **round_.response_keys,
        **{str(model.pk): keys[model.pk] for model in generated},
    }
    round_.save(update_fields=["response_keys"])
    needed = round_.prompt_set.prompts.count()
    queued = []
    for model in generated:
        missing = _missing_prompts(model, round_, keys[model.pk]).count()
        task = GenerationTask.objects.create(
            run=run,
            model=model,
            queue=QUEUES[model.backend],
            settings_key=keys[model.pk],
            needed=needed,
            done=needed - missing,
            status=Status.QUEUED if missing else Status.DONE,
            finished_at=None if missing else timezone.now(),
        )
        if missing:
            queued.append(task)
    if not queued:
        run.status = Status.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "finished_at"])
    # Pairs whose responses all exist already (imported ones, an earlier run) need no worker.
    round_add_missing_items(round_=round_)
    transaction.on_commit(lambda: [_enqueue(task) for task in queued])
    return run


def _enqueue(task: GenerationTask) -> None:
    from inference.generation_tasks import generate_responses

    generate_responses.apply_async(args=[task.pk], queue=task.queue)


@transaction.atomic
def generation_cancel(*, run: GenerationRun) -> GenerationRun:
    """Stop the run: queued tasks never start, running ones stop after their current batch."""
    now = timezone.now()
    run.tasks.filter(status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=Status.CANCELLED, finished_at=now, message="Cancelled."
    )
    GenerationRun.objects.filter(pk=run.pk, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=Status.CANCELLED, finished_at=now
    )
    run.refresh_from_db()
    return run


# ---------------------------------------------------------------- running one model's share


@dataclass
class _Writer:
    """Buffers results and writes them, with the task's counters, in batches."""

    task: GenerationTask
    described: dict[str, Any]
    started: float = field(default_factory=time.monotonic)
    results: list[GenerationResult] = field(default_factory=list)
    last_write: float = field(default_factory=time.monotonic)

    def add(self, result: GenerationResult) -> None:
        self.results.append(result)

    def due(self) -> bool:
        return (
            len(self.results) >= WRITE_EVERY_RESULTS
            or time.monotonic() - self.last_write >= WRITE_EVERY_SECONDS
        )

    def write(self) -> None:
        task = self.task
        results, self.results = self.results, []
        self.last_write = time.monotonic()
        ok = [r for r in results if r.ok]
        failed = [r for r in results if not r.ok]
        run = task.run
        with transaction.atomic():
            Response.objects.bulk_create(
                [
                    Response(
                        prompt_id=result.key,
                        model_id=task.model_id,
                        settings_key=task.settings_key,
                        text=result.text,
                        generation=self._generation(result),
                    )
                    for result in ok
                ],
                ignore_conflicts=True,
            )
            for result in failed:
                GenerationFailure.objects.update_or_create(
                    task=task,
                    prompt_id=result.key,
                    defaults={"error": result.error, "attempts": result.attempts},
                )
            answered = Response.objects.filter(
                model_id=task.model_id, settings_key=task.settings_key
            ).values("prompt_id")
            done = task.needed - _missing_prompts(task.model, run.round, task.settings_key).count()
            GenerationTask.objects.filter(pk=task.pk).update(
                done=done,
                generated=F("generated") + max(0, done - task.done),
                failed=task.failures.exclude(prompt_id__in=answered).count(),
                completion_tokens=F("completion_tokens") + sum(r.completion_tokens for r in ok),
                busy_seconds=time.monotonic() - self.started,
                heartbeat_at=timezone.now(),
            )
            task.done = done
        if ok:
            with transaction.atomic():
                # One writer at a time per round: items are numbered and balanced as a whole.
                round_ = Round.objects.select_for_update().get(pk=run.round_id)
                round_add_missing_items(round_=round_)

    def _generation(self, result: GenerationResult) -> dict[str, Any]:
        return {
            **self.described,
            **result.details,
            "finish_reason": result.finish_reason,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "attempts": result.attempts,
            "run": self.task.run_id,
            "round": self.task.run.round_id,
        }


_SETTINGS_CHANGED = (
    "The model's settings changed since this generation was launched: launch the round again "
    "to generate with the new ones, or create a new round for them."
)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _task_status(task_id: int) -> str:
    return GenerationTask.objects.values_list("status", flat=True).get(pk=task_id)


def generation_run_model(*, task_id: int) -> str:
    """Generate one model's missing responses for a run; safe to run twice."""
    claimed = GenerationTask.objects.filter(
        pk=task_id, status__in=[Status.QUEUED, Status.RUNNING]
    ).update(
        status=Status.RUNNING,
        worker=_worker_name(),
        heartbeat_at=timezone.now(),
        started_at=timezone.now(),
    )
    if not claimed:
        return "already finished"
    task = GenerationTask.objects.select_related("run__round", "model").get(pk=task_id)
    GenerationRun.objects.filter(pk=task.run_id, status=Status.QUEUED).update(status=Status.RUNNING)
    try:
        message = _generate(task)
    except BackendConfigError as error:
        message = str(error)
        _task_finish(task, Status.FAILED, message)
    except Exception as error:
        logger.exception("generation task %s failed", task_id)
        message = f"Generation stopped on an unexpected error: {error}"
        _task_finish(task, Status.FAILED, message)
    return message


def _generate(task: GenerationTask) -> str:
    run = task.run
    model = task.model
    sampling = SamplingSettings.from_overrides(
        model.config.get("sampling"), run.sampling, {"seed": run.seed}
    )
    if settings_key(model.backend, model.config, sampling) != task.settings_key:
        # What it would write now is not what the round was launched to compare.
        _task_finish(task, Status.FAILED, _SETTINGS_CHANGED)
        return _SETTINGS_CHANGED
    prompts = list(_missing_prompts(model, run.round, task.settings_key).order_by("position"))
    if not prompts:
        _task_finish(task, Status.DONE, "")
        return "nothing missing"
    loading = time.monotonic()
    backend = backend_load(model.backend, model.config)
    GenerationTask.objects.filter(pk=task.pk).update(load_seconds=time.monotonic() - loading)
    requests = [
        GenerationRequest(
            key=prompt.pk,
            messages=messages_for(prompt.text, prompt.extra.get("conversations") or ()),
            seed=prompt_seed(run.seed, prompt.external_id),
        )
        for prompt in prompts
    ]
    writer = _Writer(task, backend.describe(sampling))
    results = backend.generate(requests, sampling)
    cancelled = False
    try:
        for result in results:
            writer.add(result)
            if writer.due():
                writer.write()
                if _task_status(task.pk) == Status.CANCELLED:
                    cancelled = True
                    break
    finally:
        results.close()
    writer.write()
    if cancelled or _task_status(task.pk) == Status.CANCELLED:
        _run_settle(task.run_id)
        return "cancelled"
    task.refresh_from_db()
    if task.done >= task.needed:
        _task_finish(task, Status.DONE, "")
        return f"{task.generated} generated"
    message = (
        f"{task.needed - task.done} of {task.needed} responses failed (see the errors); "
        "launch the round again to retry only those."
    )
    _task_finish(task, Status.FAILED, message)
    return message


def _task_finish(task: GenerationTask, status: str, message: str) -> None:
    GenerationTask.objects.filter(pk=task.pk).exclude(status=Status.CANCELLED).update(
        status=status, message=message, finished_at=timezone.now()
    )
    _run_settle(task.run_id)


def _run_settle(run_id: int) -> None:
    """Close the run once every task has finished: failed if any task failed."""
    with transaction.atomic():
        run = GenerationRun.objects.select_for_update().get(pk=run_id)
        statuses = set(run.tasks.values_list("status", flat=True))
        if run.status in FINISHED or statuses & {Status.QUEUED, Status.RUNNING}:
            return
        if Status.FAILED in statuses:
            run.status = Status.FAILED
        elif Status.CANCELLED in statuses:
            run.status = Status.CANCELLED
        else:
            run.status = Status.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "finished_at"])


# ---------------------------------------------------------------- progress


@dataclass(frozen=True)
class ModelProgress:
    model: str
    backend: str
    queue: str
    status: str
    needed: int
    done: int
    failed: int
    responses_per_second: float | None
    tokens_per_second: float | None
    message: str
    errors: list[tuple[str, str]]

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.needed) if self.needed else 100


def generation_progress(round_: Round, *, errors_shown: int = 20) -> list[ModelProgress]:
    """Per model of the latest run: responses done / needed, failures, throughput."""
    run = round_.generation_runs.first()
    needed = round_.prompt_set.prompts.count()
    tasks = {}
    if run is not None:
        tasks = {t.model_id: t for t in run.tasks.select_related("model")}
    rows = []
    for model in _round_models(round_):
        task = tasks.get(model.pk)
        key = task.settings_key if task else round_.response_key(model.pk)
        done = needed - _missing_prompts(model, round_, key).count()
        errors = []
        if task is not None:
            answered = Response.objects.filter(model=model, settings_key=key).values("prompt_id")
            failures = task.failures.select_related("prompt").exclude(prompt_id__in=answered)
            errors = [(f.prompt.external_id, f.error) for f in failures[:errors_shown]]
        rows.append(
            ModelProgress(
                model=model.name,
                backend=model.get_backend_display(),
                queue=task.queue if task else "",
                status=task.status if task else "",
                needed=needed,
                done=done,
                failed=task.failed if task else 0,
                responses_per_second=task.responses_per_second if task else None,
                tokens_per_second=task.tokens_per_second if task else None,
                message=task.message if task else "",
                errors=errors,
            )
        )
    return rows
