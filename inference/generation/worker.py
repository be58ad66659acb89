"""Running one model's share of a generation run on a worker: ask its backend for every missing
response, write them in batches as they arrive (unique per prompt, model and settings key, so a
second delivery writes nothing twice), and create the round's items as pairs complete."""

import logging
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotation.models import Response, Round
from annotation.services.rounds import round_add_missing_items
from inference.backends.base import (
    BackendConfigError,
    GenerationRequest,
    GenerationResult,
    SamplingSettings,
    backend_load,
    messages_for,
    prompt_seed,
    settings_key,
)
from inference.generation.models import GenerationFailure, GenerationRun, GenerationTask
from inference.generation.selectors import prompts_missing_response
from inference.runs import Heartbeat, Lease, lease_claim

logger = logging.getLogger(__name__)

# Results are written in batches, at most this often, so that the database keeps up with an
# API backend returning hundreds of responses a second.
WRITE_EVERY_SECONDS = 0.5
WRITE_EVERY_RESULTS = 100

Status = GenerationRun.Status
FINISHED = (Status.DONE, Status.FAILED, Status.CANCELLED)


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
                    if result.text is not None  # Always, for an ok result.
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
            done = (
                task.needed
                - prompts_missing_response(task.model, run.round, task.settings_key).count()
            )
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


def generation_run_model(*, task_id: int, celery_task_id: str | None = None) -> str:
    """Generate one model's missing responses for a run; safe to run twice.

    A task another worker is generating (fresh heartbeat) is left alone; one whose worker died
    is taken over, and makes only the responses still missing (they are unique per prompt, so
    none is written twice). A delivery of `celery_task_id` that finds an earlier delivery of it
    holding the task raises `LeaseBusy` (see `lease_claim`).
    """
    lease = lease_claim(
        GenerationTask,
        task_id,
        claimable=(Status.QUEUED,),
        live=(Status.RUNNING,),
        status=Status.RUNNING,
        task_id=celery_task_id,
        started_at=timezone.now(),
        message="",
    )
    if lease is None:
        status = GenerationTask.objects.values_list("status", flat=True).get(pk=task_id)
        return "running on another worker" if status == Status.RUNNING else "already finished"
    task = GenerationTask.objects.select_related("run__round", "model").get(pk=task_id)
    GenerationRun.objects.filter(pk=task.run_id, status=Status.QUEUED).update(status=Status.RUNNING)
    with Heartbeat(lease):
        try:
            message = _generate(task, lease)
        except BackendConfigError as error:
            message = str(error)
            _task_finish(task, lease, Status.FAILED, message)
        except Exception as error:
            logger.exception("generation task %s failed", task_id)
            message = f"Generation stopped on an unexpected error: {error}"
            _task_finish(task, lease, Status.FAILED, message)
    return message


def _generate(task: GenerationTask, lease: Lease) -> str:
    run = task.run
    model = task.model
    sampling = SamplingSettings.from_overrides(
        model.config.get("sampling"), run.sampling, {"seed": run.seed}
    )
    if settings_key(model.backend, model.config, sampling) != task.settings_key:
        # What it would write now is not what the round was launched to compare.
        _task_finish(task, lease, Status.FAILED, _SETTINGS_CHANGED)
        return _SETTINGS_CHANGED
    prompts = list(
        prompts_missing_response(model, run.round, task.settings_key).order_by("position")
    )
    if not prompts:
        _task_finish(task, lease, Status.DONE, "")
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
    stopped = False
    try:
        for result in results:
            writer.add(result)
            if writer.due():
                writer.write()
                # Cancelled, or taken over by another worker after this one seemed dead.
                if not lease.held():
                    stopped = True
                    break
    finally:
        # Backends' generate() are generators (the Backend protocol says only Iterator): closing
        # one stops its work at once.
        if isinstance(results, Generator):
            results.close()
    writer.write()
    if stopped or not lease.held():
        if not lease.held(unless=()):
            return "taken over by another worker"
        _run_settle(task.run_id)
        return "cancelled"
    task.refresh_from_db()
    if task.done >= task.needed:
        _task_finish(task, lease, Status.DONE, "")
        return f"{task.generated} generated"
    message = (
        f"{task.needed - task.done} of {task.needed} responses failed (see the errors); "
        "launch the round again to retry only those."
    )
    _task_finish(task, lease, Status.FAILED, message)
    return message


def _task_finish(task: GenerationTask, lease: Lease, status: str, message: str) -> None:
    lease.finish(status, message)
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
