"""The report of a round stored in the database: its frame read in one query, then the maths."""

import hashlib
import json
from dataclasses import replace

from django.conf import settings
from django.db.models import Count, Max, Q, Sum

from annotation.models import Annotation, Battle, LanguageModel, Round, WorkerSession
from annotation.reports.build import RoundReport, build_report
from annotation.reports.frames import counted, round_frame, round_order_votes
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


# Part of every report's fingerprint: raise it when a change to the report code changes what a
# stored report would show, so that stored builds are rebuilt.
REPORT_CODE_VERSION = 1


def report_fingerprint(round_: Round, *, include_excluded: bool) -> tuple[str, int]:
    """A digest of everything a round's report page shows, and the round's counted annotation
    count: the project's annotations (the leaderboard reads them all) and battles, who is
    excluded, the model names and the report settings. Annotations are only ever added or
    deleted, so a count, the highest id and the sum of ids change with each change."""
    annotations = Annotation.objects.filter(item__round__project_id=round_.project_id).aggregate(
        n=Count("id"),
        top=Max("id"),
        ids=Sum("id"),
        in_round=Count("id", filter=Q(item__round_id=round_.pk) & counted()),
        in_round_all=Count("id", filter=Q(item__round_id=round_.pk, item__check_kind="")),
    )
    exclusions = WorkerSession.objects.filter(
        round__project_id=round_.project_id, excluded_at__isnull=False
    ).aggregate(n=Count("id"), ids=Sum("id"), latest=Max("excluded_at"))
    battles = Battle.objects.filter(project_id=round_.project_id).aggregate(
        n=Count("id"), top=Max("id"), ids=Sum("id")
    )
    names = list(
        LanguageModel.objects.filter(
            Q(pk=round_.candidate_id) | Q(rounds_as_baseline=round_)
        ).values_list("pk", "name")
    )
    state = {
        "version": REPORT_CODE_VERSION,
        "round": round_.pk,
        "include_excluded": include_excluded,
        "annotations": annotations,
        "exclusions": exclusions,
        "battles": battles,
        "names": sorted(names),
        "settings": [DEFAULT_RESAMPLES, DEFAULT_SEED, settings.LEADERBOARD_MIN_VERDICTS],
    }
    digest = hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()
    counted_here = annotations["in_round_all" if include_excluded else "in_round"]
    return digest, counted_here
