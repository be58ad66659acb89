"""A round's report page and its downloads: the same report the CLI writes and the API serves."""

import mimetypes

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET
from matplotlib.figure import Figure

from annotation import selectors
from annotation.http import ResearcherRequest
from annotation.models import Round
from annotation.reports.bradley_terry import ranked
from annotation.reports.build import battle_groups, leaderboard
from annotation.reports.charts import inline_svg, leaderboard_figure
from annotation.reports.export import (
    figure_1,
    figure_2,
    file_names,
    group_title,
    report_file,
)
from annotation.reports.frames import project_battles
from annotation.reports.selectors import round_report
from annotation.reports.stats import MODE_TITLES, Mode

CONTENT_TYPES = {".jsonl": "application/x-ndjson", ".csv": "text/csv; charset=utf-8"}


def _inline(figure: Figure, salt: str) -> str:
    # Safe: the chart code escapes every text it draws (see charts.inline_svg).
    return mark_safe(inline_svg(figure, salt=salt))


def _leaderboard(round_: Round, requested: str | None) -> dict:
    """The project's Bradley-Terry leaderboard from one group's verdicts (the first group
    unless another is asked for)."""
    battles = project_battles(round_.project_id)
    groups = battle_groups(battles)
    group = requested if requested in groups else (groups[0] if groups else "")
    board = leaderboard(battles, group) if group else []
    rows = ranked(board, min_verdicts=settings.LEADERBOARD_MIN_VERDICTS)
    title = group_title(group)
    return {
        "board": rows,
        "min_verdicts": settings.LEADERBOARD_MIN_VERDICTS,
        "board_group": group,
        "board_groups": [(g, group_title(g)) for g in groups],
        "board_svg": _inline(leaderboard_figure(board, title=title), "board") if board else None,
    }


@login_required
@require_GET
def round_report_page(request: ResearcherRequest, round_id: int) -> HttpResponse:
    round_ = get_object_or_404(selectors.rounds_for_user(request.user), pk=round_id)
    asked = request.GET.get("mode")
    mode: Mode = "item" if asked == "item" else "annotation"
    with_excluded = request.GET.get("excluded") == "include"
    report = round_report(round_, include_excluded=with_excluded)
    context = {
        "round": round_,
        "report": report,
        "exclusions": report.exclusions,
        "with_excluded": report.includes_excluded,
        "mode": mode,
        "mode_title": MODE_TITLES[mode],
        "modes": MODE_TITLES,
        "outcome_rows": [
            (group_title(group), baseline, outcome)
            for group, cells in report.outcomes(mode).items()
            for baseline, outcome in cells.items()
        ],
        "humans_svg": _inline(figure_1(report, mode), "figure1") if report.human_groups else None,
        "judges_svg": _inline(figure_2(report, mode), "figure2") if report.judge_groups else None,
        "downloads": file_names(report),
        **_leaderboard(round_, request.GET.get("leaderboard")),
    }
    return render(request, "research/report.html", context)


@login_required
@require_GET
def round_report_download(request: ResearcherRequest, round_id: int, name: str) -> HttpResponse:
    round_ = get_object_or_404(selectors.rounds_for_user(request.user), pk=round_id)
    report = round_report(round_)
    if name not in file_names(report):
        raise Http404(f"The report has no file named {name!r}.")
    content = report_file(report, name)
    suffix = name[name.rindex(".") :]
    content_type = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0]
    response = HttpResponse(content, content_type=content_type or "application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="round-{round_.pk}-{name}"'
    return response
