"""A round's report page and its downloads: the same report the CLI writes and the API serves."""

import mimetypes

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from annotation import selectors
from annotation.reports.build import battle_groups, leaderboard
from annotation.reports.charts import inline_svg, leaderboard_figure
from annotation.reports.export import (
    UnknownFile,
    figure_1,
    figure_2,
    file_names,
    group_title,
    report_file,
)
from annotation.reports.frames import project_battles
from annotation.reports.selectors import round_report
from annotation.reports.stats import MODE_TITLES

CONTENT_TYPES = {".jsonl": "application/x-ndjson", ".csv": "text/csv; charset=utf-8"}


@login_required
@require_GET
def round_report_page(request: HttpRequest, round_id: int) -> HttpResponse:
    round_ = get_object_or_404(selectors.rounds_for_user(request.user), pk=round_id)
    mode = request.GET.get("mode", "annotation")
    if mode not in MODE_TITLES:
        mode = "annotation"
    report = round_report(round_)
    battles = project_battles(round_.project_id)
    board_groups = battle_groups(battles)
    board_group = request.GET.get("leaderboard") or (board_groups[0] if board_groups else "")
    board = leaderboard(battles, board_group) if board_group in board_groups else []
    # The SVG comes from our chart code, which escapes every text it draws (see inline_svg).
    figures = {
        "humans": mark_safe(inline_svg(figure_1(report, mode), salt="figure1"))
        if report.human_groups
        else None,
        "judges": mark_safe(inline_svg(figure_2(report, mode), salt="figure2"))
        if report.judge_groups
        else None,
        "leaderboard": mark_safe(
            inline_svg(leaderboard_figure(board, title=group_title(board_group)), salt="board")
        )
        if board
        else None,
    }
    context = {
        "round": round_,
        "report": report,
        "mode": mode,
        "mode_title": MODE_TITLES[mode],
        "modes": MODE_TITLES,
        "outcome_rows": [
            (group_title(group), baseline, outcome)
            for group, cells in report.outcomes(mode).items()
            for baseline, outcome in cells.items()
        ],
        "figures": figures,
        "downloads": file_names(report),
        "board": board,
        "board_group": board_group,
        "board_groups": [(group, group_title(group)) for group in board_groups],
    }
    return render(request, "research/report.html", context)


@login_required
@require_GET
def round_report_download(request: HttpRequest, round_id: int, name: str) -> HttpResponse:
    round_ = get_object_or_404(selectors.rounds_for_user(request.user), pk=round_id)
    report = round_report(round_)
    if name not in file_names(report):
        raise Http404(f"The report has no file named {name!r}.")
    try:
        content = report_file(report, name)
    except UnknownFile:
        raise Http404(name) from None
    suffix = name[name.rindex(".") :]
    content_type = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0]
    response = HttpResponse(content, content_type=content_type or "application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="round-{round_.pk}-{name}"'
    return response
