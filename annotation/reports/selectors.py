"""The report of a round stored in the database: its frame read in one query, then the maths."""

from dataclasses import replace

from annotation.models import Round, WorkerSession
from annotation.reports.build import RoundReport, build_report
from annotation.reports.frames import round_frame, round_order_votes
from annotation.reports.stats import DEFAULT_RESAMPLES, DEFAULT_SEED


def round_report(
    round_: Round,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    include_excluded: bool = False,
) -> RoundReport:
    """The round's report without excluded workers (or with them, to compare)."""
    baselines = list(round_.baselines.order_by("pk").values_list("name", flat=True))
    exclusions = tuple(
        WorkerSession.objects.filter(round=round_, excluded_at__isnull=False)
        .order_by("excluded_at", "pk")
        .values_list("annotator__name", "excluded_reason")
    )
    report = build_report(
        round_frame(round_.pk, include_excluded=include_excluded),
        round_id=round_.pk,
        candidate=round_.candidate.name,
        baselines=baselines,
        resamples=resamples,
        seed=seed,
        order_votes=round_order_votes(round_.pk),
    )
    return replace(report, exclusions=exclusions, includes_excluded=include_excluded)
