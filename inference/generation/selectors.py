"""Reads of generation: what a round still misses, and its progress per model."""

from dataclasses import dataclass

from django.db.models import QuerySet

from annotation.models import LanguageModel, Prompt, Response, Round


def round_models(round_: Round) -> list[LanguageModel]:
    """The candidate, then the baselines by name."""
    return [round_.candidate, *round_.baselines.order_by("name")]


def prompts_missing_response(model: LanguageModel, round_: Round, key: str) -> QuerySet[Prompt]:
    """The prompts of the round's set without a response of the model under the key."""
    answered = Response.objects.filter(model=model, settings_key=key).values("prompt_id")
    return Prompt.objects.filter(prompt_set_id=round_.prompt_set_id).exclude(pk__in=answered)


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
    for model in round_models(round_):
        task = tasks.get(model.pk)
        key = task.settings_key if task else round_.response_key(model.pk)
        done = needed - prompts_missing_response(model, round_, key).count()
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
