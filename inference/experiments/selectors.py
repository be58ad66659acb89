"""Reads for the experiment pages, the API and the command: progress and results per arm."""

import csv
import io
from dataclasses import dataclass

from django.db.models import Count, QuerySet

from annotation.models import Rating, Response
from annotation.reports.ratings import rating_rows, rating_tables
from annotation.selectors import Viewer, visible_to
from inference.experiments.models import Experiment, ExperimentArm


def experiments_for_user(user: Viewer) -> QuerySet[Experiment]:
    return visible_to(user, Experiment.objects.all()).select_related("project", "dev_set", "judge")


def experiment_answers(experiment: Experiment) -> QuerySet[Response]:
    """Every answer the experiment's candidates gave to its dev prompts."""
    keys = [experiment.sample_key(sample) for sample in range(experiment.samples_per_prompt)]
    return Response.objects.filter(settings_key__in=keys, prompt__prompt_set=experiment.dev_set_id)


@dataclass(frozen=True)
class ArmResult:
    """One training set's candidate: its training, its answers and their mean helpfulness with
    a 95 % interval that resamples dev prompts (a prompt's answers together)."""

    label: str
    examples: int
    training_set: str
    run_status: str
    model: str
    answers: int
    needed: int
    scored: int
    mean: float | None
    ci95: tuple[float, float] | None

    def as_json(self) -> dict:
        return {**self.__dict__, "ci95": list(self.ci95) if self.ci95 else None}


CSV_COLUMNS = [
    "label",
    "examples",
    "training_set",
    "run_status",
    "model",
    "answers",
    "needed",
    "scored",
    "mean",
    "ci95_low",
    "ci95_high",
]


def experiment_results(experiment: Experiment, *, resamples: int = 1000) -> list[ArmResult]:
    """Each arm, in order, with what it has so far (one query for the scores)."""
    arms = list(
        ExperimentArm.objects.filter(experiment=experiment)
        .select_related("training_set", "training_run__registered_model")
        .order_by("position")
    )
    answers = experiment_answers(experiment)
    rows = rating_rows(experiment.project_id, scale=Rating.Scale.HELPFULNESS_1_6, responses=answers)
    judge = experiment.judge.annotator
    # The experiment's judge only: its one group, a table row per candidate.
    rows = rows[(rows["annotator"] == judge.name) & (rows["kind"] == judge.kind)]
    by_model = {
        row.model: row
        for table in rating_tables(rows, resamples=resamples, seed=experiment.seed)
        for row in table.rows
    }
    counts = dict(
        answers.values("model__name")
        .annotate(n=Count("id"))
        .values_list("model__name", "n")
        .order_by()
    )
    needed = experiment.samples_per_prompt * experiment.dev_set.prompts.count()
    results = []
    for arm in arms:
        run = arm.training_run
        model = run.registered_model.name if run and run.registered_model else ""
        scored = by_model.get(model)
        results.append(
            ArmResult(
                label=arm.label,
                examples=arm.examples,
                training_set=arm.training_set.name,
                run_status=run.status if run else "not started",
                model=model,
                answers=counts.get(model, 0),
                needed=needed,
                scored=scored.n if scored else 0,
                mean=scored.mean if scored else None,
                ci95=scored.ci95 if scored else None,
            )
        )
    return results


def results_csv(results: list[ArmResult]) -> str:
    """The results, a row per arm (CSV_COLUMNS)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for result in results:
        low, high = result.ci95 or ("", "")
        values = {**result.as_json(), "ci95_low": low, "ci95_high": high}
        writer.writerow(["" if values[c] is None else values[c] for c in CSV_COLUMNS])
    return buffer.getvalue()
