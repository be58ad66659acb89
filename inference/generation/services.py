"""Generation's actions: register a model with its backend, launch a round's generation, cancel it.

A launch creates a run with one task per model that has a generation backend, and queues each
task on its backend's queue (`gpu`, `api`, `default`) once the transaction commits; the worker
(`worker.generation_run_model`) makes the responses. A model's responses are kept per settings
key (`backends.base.settings_key`: the sampling, the seed and the model's options that shape
the text). A round launched with the settings of an earlier one reuses its responses; one
launched with other settings gets its own beside them.

A task is committed as queued before its message is sent: if the broker is unreachable the
launch raises `QueueUnavailable`, and the task is sent again by the sweeper
(`generation_tasks_requeue_lost`, from `celery beat`) or by the next launch of the round.
"""

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings as django_settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from annotation.models import Item, LanguageModel, Project, Round
from annotation.services.rounds import round_add_missing_items
from annotation.validators import secrets_refused
from inference.backends.base import (
    BACKENDS,
    QUEUES,
    BackendConfigError,
    SamplingSettings,
    backend_check,
    settings_key,
)
from inference.generation.models import GenerationRun, GenerationTask
from inference.generation.selectors import prompts_missing_response, round_models
from inference.generation.tasks import generate_responses
from inference.runs import enqueue, leases_requeue_lost, new_task_id, queued_marker

Status = GenerationRun.Status


class GenerationInvalid(ValueError):
    """Generation cannot start as asked; the message says what to fix."""


@transaction.atomic
def model_register(
    *,
    project: Project,
    name: str,
    backend: str,
    config: Mapping[str, Any],
    instance: LanguageModel | None = None,
) -> LanguageModel:
    """The one way a model is stored, from the page, the API, `register_model` and training:
    its config checked for secrets and by its backend. Creates the model, or updates the one
    named so (or `instance`, which may be renamed)."""
    name = name.strip()
    if not name:
        raise GenerationInvalid("Give the model a name.")
    if backend not in {*BACKENDS, LanguageModel.Backend.IMPORTED}:
        raise GenerationInvalid(
            f"Unknown backend {backend!r}: use one of {', '.join(sorted(BACKENDS))} "
            "(or 'imported' for responses imported from files)."
        )
    refused = secrets_refused(dict(config))
    if refused:
        raise GenerationInvalid(refused)
    if backend != LanguageModel.Backend.IMPORTED:
        try:
            backend_check(backend, config)
        except BackendConfigError as error:
            raise GenerationInvalid(str(error)) from None
    if instance is None:
        model, _ = LanguageModel.objects.update_or_create(
            project=project, name=name, defaults={"backend": backend, "config": dict(config)}
        )
        return model
    instance.name, instance.backend, instance.config = name, backend, dict(config)
    instance.save(update_fields=["name", "backend", "config"])
    return instance


def _model_key(model: LanguageModel, sampling: Mapping[str, Any] | None, seed: int) -> str:
    """The settings key of the responses a run with this sampling and seed makes."""
    effective = SamplingSettings.from_overrides(
        model.config.get("sampling"), sampling, {"seed": seed}
    )
    return settings_key(model.backend, model.config, effective)


def _compared_keys(round_: Round, model: LanguageModel) -> set[str]:
    """The settings keys of the model's responses that the round's items already show."""
    shown = Item.objects.filter(round=round_).shown_responses()
    return set(shown.filter(model=model).values_list("settings_key", flat=True))


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
    user: User | AnonymousUser | None = None,
) -> GenerationRun:
    """Queue the generation of every missing response of the round's models.

    Each generated model's responses are those made with this launch's settings (its settings
    key, recorded on the round): ones that exist already, from an earlier run or another round
    launched the same way, are reused. A run already queued or running is returned as it is
    (a second click launches nothing); after a failed, cancelled or finished run a new one with
    the same settings makes only what is still missing. Launching a run again also sends again
    the tasks of its that were lost (see `generation_tasks_requeue_lost`), at once.
    """
    # Locked, so that two launches at once make one run; read afresh with its models.
    round_ = (
        Round.objects.select_for_update(of=("self",))
        .select_related("candidate", "prompt_set")
        .get(pk=round_.pk)
    )
    active = round_.generation_runs.filter(status__in=[Status.QUEUED, Status.RUNNING]).first()
    if active is not None:
        lost = _tasks_requeue_lost(active.tasks.all(), queued_for=timedelta(0))
        transaction.on_commit(lambda: _enqueue_all(lost))
        return active
    if round_.prompt_set.answers_fixed:
        raise GenerationInvalid(
            f"The answers of {round_.prompt_set.name!r} are fixed (taken from dialogues): no "
            "model generates for this round."
        )
    seed = round_.seed if seed is None else seed
    generated = [m for m in round_models(round_) if m.backend != LanguageModel.Backend.IMPORTED]
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
        missing = prompts_missing_response(model, round_, keys[model.pk]).count()
        task_id = new_task_id()
        task = GenerationTask.objects.create(
            run=run,
            model=model,
            queue=QUEUES[model.backend],
            settings_key=keys[model.pk],
            needed=needed,
            done=needed - missing,
            status=Status.QUEUED if missing else Status.DONE,
            finished_at=None if missing else timezone.now(),
            worker=queued_marker(task_id) if missing else "",
            heartbeat_at=timezone.now() if missing else None,
        )
        if missing:
            queued.append((task, task_id))
    if not queued:
        run.status = Status.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "finished_at"])
    # Pairs whose responses all exist already (imported ones, an earlier run) need no worker.
    round_add_missing_items(round_=round_)

    transaction.on_commit(lambda: _enqueue_all([(t.pk, t.queue, i) for t, i in queued]))
    return run


def _enqueue_all(tasks: list[tuple[int, str, str]]) -> None:
    """Send each (task, queue, task id); raises QueueUnavailable, the rest left to the sweeper."""
    for pk, queue, task_id in tasks:
        enqueue(generate_responses, pk, task_id=task_id, queue=queue)


def _tasks_requeue_lost(tasks: Any, *, queued_for: timedelta) -> list[tuple[int, str, str]]:
    queues = dict(tasks.values_list("pk", "queue"))
    lost = leases_requeue_lost(
        tasks,
        queued=Status.QUEUED,
        live=(Status.RUNNING,),
        queues=set(queues.values()),
        queued_for=queued_for,
    )
    return [(pk, queues[pk], task_id) for pk, task_id in lost]


def generation_tasks_requeue_lost() -> int:
    """Send again every generation task whose task was lost (see `leases_requeue_lost`)."""
    active = GenerationTask.objects.filter(status__in=[Status.QUEUED, Status.RUNNING])
    lost = _tasks_requeue_lost(
        active, queued_for=timedelta(seconds=django_settings.RUN_REQUEUE_AFTER_SECONDS)
    )
    _enqueue_all(lost)
    return len(lost)


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
