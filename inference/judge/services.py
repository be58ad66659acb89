"""Actions on judges and their runs: create a judge, attach it to a round, queue its run, retry
its failures, re-queue runs whose task was lost. The run itself is `worker.judge_run_execute`,
on the `api` queue."""

from datetime import timedelta

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotation.models import Annotator, Project, Round
from inference.clients.openai_compat import key_route_problem
from inference.judge.models import Judge, JudgeCall, JudgeRun
from inference.judge.prompts import DEFAULT_TEMPLATE, JudgeInvalid, template_for
from inference.judge.tasks import judge_round
from inference.runs import (
    enqueue,
    lease_is_live,
    leases_requeue_lost,
    new_task_id,
    queued_marker,
)

LIVE = (JudgeRun.Status.RUNNING,)
# The queue the judge's task is routed to (settings.CELERY_TASK_ROUTES).
QUEUE = "api"
# ---------------------------------------------------------------- judges


@transaction.atomic
def judge_create(*, project: Project, name: str, **settings: object) -> Judge:
    """A judge for the project, registered as a model-judge annotator of the same name."""
    name = name.strip()
    if not name:
        raise JudgeInvalid("Give the judge a name.")
    if Judge.objects.filter(project=project, name=name).exists():
        raise JudgeInvalid(f"Project {project.name!r} already has a judge named {name!r}.")
    mode = str(settings.get("mode") or Judge.Mode.PAIRWISE)
    settings.setdefault("template_version", DEFAULT_TEMPLATE.get(mode, ""))
    annotator, _ = Annotator.objects.get_or_create(
        project=project, kind=Annotator.Kind.JUDGE, name=name
    )
    judge = Judge(project=project, name=name, annotator=annotator, **settings)
    try:
        judge.full_clean(exclude=["annotator", "project"])
    except ValidationError as invalid:
        raise JudgeInvalid(_first_error(invalid)) from None
    template_for(judge.template_version, judge.mode)
    refused = key_route_problem(judge.api_key_env, judge.base_url)
    if refused:
        raise JudgeInvalid(refused)
    judge.save()
    return judge


def judge_get_or_create(*, project: Project, name: str, **settings: object) -> tuple[Judge, bool]:
    """The project's judge of that name, created with `settings` if new.

    An existing judge keeps its settings: asking for other ones is refused rather than
    silently mixing verdicts of two configurations under one annotator.
    """
    # None is "not given"; an empty api_key_env is a judge that sends no key.
    given = {key: value for key, value in settings.items() if value is not None}
    judge = Judge.objects.filter(project=project, name=name.strip()).first()
    if judge is None:
        return judge_create(project=project, name=name, **given), True
    differs = [key for key, value in given.items() if getattr(judge, key) != value]
    if differs:
        current = ", ".join(f"{key}={getattr(judge, key)!r}" for key in differs)
        raise JudgeInvalid(
            f"Judge {judge.name!r} already exists with other settings ({current}); "
            "give another name for other settings."
        )
    return judge, False


def _first_error(invalid: ValidationError) -> str:
    if hasattr(invalid, "error_dict"):
        field, errors = next(iter(invalid.message_dict.items()))
        return f"{field}: {' '.join(errors)}"
    return " ".join(invalid.messages)


# ---------------------------------------------------------------- runs


def judge_run_attach(*, round_: Round, judge: Judge) -> JudgeRun:
    """The judge's run on the round, created the first time."""
    if judge.project_id != round_.project_id:
        raise JudgeInvalid(f"Judge {judge.name!r} belongs to another project.")
    if judge.mode == Judge.Mode.SAFETY and not round_.prompt_set.sensitive:
        raise JudgeInvalid(
            f"Judge {judge.name!r} rates safety, and round {round_.pk}'s prompt set "
            f"{round_.prompt_set.name!r} is not marked sensitive: import it with --sensitive "
            "(or PATCH /api/prompt-sets/ID/ with sensitive true) if its prompts are meant to "
            "test safety."
        )
    if round_.is_absolute and judge.mode == Judge.Mode.PAIRWISE:
        raise JudgeInvalid(
            f"Judge {judge.name!r} compares two answers, and round {round_.pk} rates answers "
            "alone: use a judge of an absolute mode (fail_pass_excellent, helpfulness_1_6, "
            "safety)."
        )
    run, _ = JudgeRun.objects.get_or_create(round=round_, judge=judge)
    return run


def judge_run_start(*, round_: Round, judge: Judge) -> tuple[JudgeRun, bool]:
    """Attach the judge to the round and queue its missing calls on the `api` queue; returns the
    run and whether it was queued (not when a live worker is executing it already).

    The run is committed as queued before its task is sent: if the broker is unreachable this
    raises `QueueUnavailable` and the sweeper sends the task once the broker is back.
    """
    with transaction.atomic():
        run = judge_run_attach(round_=round_, judge=judge)
        queued = not lease_is_live(run, LIVE)
        if queued:
            task_id = new_task_id()
            JudgeRun.objects.filter(pk=run.pk).update(
                status=JudgeRun.Status.QUEUED,
                message="",
                worker=queued_marker(task_id),
                heartbeat_at=timezone.now(),
            )
            transaction.on_commit(lambda: enqueue(judge_round, run.pk, task_id=task_id))
    run.refresh_from_db()
    return run, queued


def judge_run_retry_failed(*, run: JudgeRun) -> int:
    """Put the failed calls back in line and queue the run; returns how many."""
    with transaction.atomic():
        count = run.calls.filter(status=JudgeCall.Status.FAILED).update(
            status=JudgeCall.Status.PENDING
        )
        judge_run_start(round_=run.round, judge=run.judge)
    return count


def judge_runs_requeue_lost() -> int:
    """Send again the task of every run whose task was lost (see `leases_requeue_lost`)."""
    lost = leases_requeue_lost(
        JudgeRun.objects.all(),
        queued=JudgeRun.Status.QUEUED,
        live=LIVE,
        queues=[QUEUE],
        queued_for=timedelta(seconds=django_settings.RUN_REQUEUE_AFTER_SECONDS),
    )
    for run_id, task_id in lost:
        enqueue(judge_round, run_id, task_id=task_id)
    return len(lost)
