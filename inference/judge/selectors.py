"""Reads for the judge pages, the command line and reports."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from annotation.models import Annotation, Item, Round
from inference.judge.models import Judge, JudgeCall, JudgeRun
from inference.judge.verdicts import combine_orders, position_consistency


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


def _needed(run: JudgeRun) -> int:
    items = Item.objects.filter(round_id=run.round_id)
    if run.judge.mode == Judge.Mode.PAIRWISE:
        return items.count() * (2 if run.judge.both_orders else 1)
    responses = set()
    for candidate, baseline in items.values_list("candidate_response_id", "baseline_response_id"):
        responses.update((candidate, baseline))
    return len(responses)


def run_progress(run: JudgeRun) -> RunProgress:
    """Calls judged / needed, failures, tokens paid for and their cost at the judge's prices."""
    paid = Q(cached=False)
    totals = run.calls.aggregate(
        calls=Count("id"),
        done=Count("id", filter=Q(status=JudgeCall.Status.DONE)),
        failed=Count("id", filter=Q(status=JudgeCall.Status.FAILED)),
        from_cache=Count("id", filter=Q(cached=True, status=JudgeCall.Status.DONE)),
        prompt_tokens=Sum("prompt_tokens", filter=paid, default=0),
        completion_tokens=Sum("completion_tokens", filter=paid, default=0),
    )
    judge = run.judge
    cost = (
        Decimal(totals["prompt_tokens"]) * judge.price_input_per_1k
        + Decimal(totals["completion_tokens"]) * judge.price_output_per_1k
    ) / 1000
    choices: dict[str, int] = {}
    consistent = both = 0
    if judge.mode == Judge.Mode.PAIRWISE:
        choices = dict(
            Annotation.objects.filter(item__round_id=run.round_id, annotator_id=judge.annotator_id)
            .values_list("choice")
            .annotate(count=Count("id"))
            .values_list("choice", "count")
        )
        consistent, both = position_consistency(_combined_items(run).values())
    return RunProgress(
        run=run,
        needed=max(totals["calls"], _needed(run)),
        done=totals["done"],
        failed=totals["failed"],
        cached=totals["from_cache"],
        prompt_tokens=totals["prompt_tokens"],
        completion_tokens=totals["completion_tokens"],
        cost=cost.quantize(Decimal("0.01")),
        choices=choices,
        consistent=consistent,
        both_orders=both,
    )


def _combined_items(run: JudgeRun) -> dict:
    votes: dict[int, dict[bool, str]] = defaultdict(dict)
    for item_pk, order, verdict in run.calls.filter(
        status=JudgeCall.Status.DONE, item__isnull=False
    ).values_list("item_id", "candidate_first", "verdict"):
        votes[item_pk][order] = verdict
    return {
        item_pk: combine_orders(item_votes, inconsistent_as_tie=run.judge.inconsistent_as_tie)
        for item_pk, item_votes in votes.items()
    }


def run_failures(run: JudgeRun, limit: int = 20) -> QuerySet[JudgeCall]:
    return (
        run.calls.filter(status=JudgeCall.Status.FAILED)
        .select_related("item__prompt", "response__prompt")
        .order_by("id")[:limit]
    )


def run_scores(run: JudgeRun) -> dict[str, Counter]:
    """Absolute modes: how many responses of each model got each label."""
    scores: dict[str, Counter] = defaultdict(Counter)
    for model_name, verdict in run.calls.filter(
        status=JudgeCall.Status.DONE, response__isnull=False
    ).values_list("response__model__name", "verdict"):
        scores[model_name][verdict] += 1
    return dict(scores)
