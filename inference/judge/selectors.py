"""Reads for the judge pages, the command line and reports."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from annotation.models import Annotation, Item, Round
from inference.judge.models import Judge, JudgeCall, JudgeRun
from inference.judge.verdicts import Combined, combine_orders, position_consistency


@dataclass(frozen=True)
class RunProgress:
    run: JudgeRun
    needed: int
    done: int
    failed: int
    cached: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    # Pairwise: items with the judge's verdict, by choice, and how often both orders agreed.
    choices: dict[str, int] = field(default_factory=dict)
    consistent: int = 0
    both_orders: int = 0

    @property
    def pending(self) -> int:
        return max(0, self.needed - self.done - self.failed)

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.needed) if self.needed else 100

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def consistency_percent(self) -> int | None:
        return round(100 * self.consistent / self.both_orders) if self.both_orders else None

    @property
    def recorded(self) -> int:
        return sum(self.choices.values())


def runs_for_round(round_: Round) -> QuerySet[JudgeRun]:
    return JudgeRun.objects.filter(round=round_).select_related("judge")


def judges_for_project(project_id: int) -> QuerySet[Judge]:
    return Judge.objects.filter(project_id=project_id)


def run_progress(run: JudgeRun) -> RunProgress:
    """Calls judged / needed, failures, tokens paid for and their cost at the judge's prices."""
    return _progress(run.round_id, [run])[0]


def round_judge_progress(round_: Round) -> list[RunProgress]:
    """Every judge run of the round with its progress, in the same few queries however many
    runs and calls there are (the judge page refreshes this while a run is active)."""
    return _progress(round_.pk, list(runs_for_round(round_)))


def _progress(round_id: int, runs: list[JudgeRun]) -> list[RunProgress]:
    if not runs:
        return []
    paid = Q(cached=False)
    totals = {
        row["run_id"]: row
        for row in JudgeCall.objects.filter(run__in=runs)
        .values("run_id")
        .annotate(
            calls=Count("id"),
            done=Count("id", filter=Q(status=JudgeCall.Status.DONE)),
            failed=Count("id", filter=Q(status=JudgeCall.Status.FAILED)),
            from_cache=Count("id", filter=Q(cached=True, status=JudgeCall.Status.DONE)),
            prompt_tokens=Sum("prompt_tokens", filter=paid, default=0),
            completion_tokens=Sum("completion_tokens", filter=paid, default=0),
        )
        .order_by()
    }
    # Candidate and baseline responses come from different models, so the distinct counts
    # add up to the number of responses an absolute judge rates (a rated item holds one).
    judged = Item.objects.filter(round_id=round_id).exclude(check_kind=Item.Check.ATTENTION)
    items = judged.aggregate(
        items=Count("id"),
        candidates=Count("candidate_response_id", distinct=True),
        baselines=Count("baseline_response_id", distinct=True),
        rated=Count("response_id", distinct=True),
    )
    pairwise = [run for run in runs if run.judge.mode == Judge.Mode.PAIRWISE]
    choices: dict[int, dict[str, int]] = defaultdict(dict)
    for annotator_id, choice, count in (
        Annotation.objects.filter(
            item__round_id=round_id, annotator_id__in=[run.judge.annotator_id for run in pairwise]
        )
        .values("annotator_id", "choice")
        .annotate(count=Count("id"))
        .values_list("annotator_id", "choice", "count")
        .order_by()
    ):
        choices[annotator_id][choice] = count
    combined = _combined_items(pairwise)
    empty = {"calls": 0, "done": 0, "failed": 0, "from_cache": 0}
    progress = []
    for run in runs:
        row = totals.get(run.pk, {**empty, "prompt_tokens": 0, "completion_tokens": 0})
        judge = run.judge
        if judge.mode == Judge.Mode.PAIRWISE:
            needed = items["items"] * (2 if judge.both_orders else 1)
            consistent, both = position_consistency(combined[run.pk].values())
        else:
            needed = items["candidates"] + items["baselines"] + items["rated"]
            consistent = both = 0
        cost = (
            Decimal(row["prompt_tokens"]) * judge.price_input_per_1k
            + Decimal(row["completion_tokens"]) * judge.price_output_per_1k
        ) / 1000
        progress.append(
            RunProgress(
                run=run,
                needed=max(row["calls"], needed),
                done=row["done"],
                failed=row["failed"],
                cached=row["from_cache"],
                prompt_tokens=row["prompt_tokens"],
                completion_tokens=row["completion_tokens"],
                cost=cost.quantize(Decimal("0.01")),
                choices=choices[judge.annotator_id] if judge.mode == Judge.Mode.PAIRWISE else {},
                consistent=consistent,
                both_orders=both,
            )
        )
    return progress


def _combined_items(runs: list[JudgeRun]) -> dict[int, dict[int, Combined]]:
    """Per run, each item's verdict combined over the orders the judge saw."""
    votes: dict[int, dict[int, dict[bool, str]]] = {run.pk: defaultdict(dict) for run in runs}
    if runs:
        for run_pk, item_pk, order, verdict in JudgeCall.objects.filter(
            run__in=runs, status=JudgeCall.Status.DONE, item__isnull=False
        ).values_list("run_id", "item_id", "candidate_first", "verdict"):
            if order is not None:  # Pairwise calls always record the order shown.
                votes[run_pk][item_pk][order] = verdict
    rules = {run.pk: run.judge.inconsistent_as_tie for run in runs}
    return {
        run_pk: {
            item_pk: combine_orders(item_votes, inconsistent_as_tie=rules[run_pk])
            for item_pk, item_votes in run_votes.items()
        }
        for run_pk, run_votes in votes.items()
    }


def run_failures(run: JudgeRun, limit: int = 20) -> QuerySet[JudgeCall]:
    return (
        run.calls.filter(status=JudgeCall.Status.FAILED)
        .select_related("item__prompt", "response__prompt")
        .order_by("id")[:limit]
    )


def run_scores(run: JudgeRun) -> dict[str, dict[str, int]]:
    """Absolute modes: how many responses of each model got each label.

    Plain dicts, not Counters: a template reads `counts.items` as a key first, and a Counter
    answers 0 for any key."""
    scores: dict[str, Counter] = defaultdict(Counter)
    for model_name, verdict in run.calls.filter(
        status=JudgeCall.Status.DONE, response__isnull=False
    ).values_list("response__model__name", "verdict"):
        scores[model_name][verdict] += 1
    return {name: dict(sorted(counts.items())) for name, counts in scores.items()}
