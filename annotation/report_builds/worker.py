"""Running a report build: the report computed once, its page sections rendered, its figures
and downloads written to storage, and the outcome recorded on the build."""

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pandas as pd
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from annotation.models import ReportBuild
from annotation.reports.bradley_terry import ranked
from annotation.reports.build import RoundReport, battle_groups, leaderboard
from annotation.reports.charts import FORMATS, figure_bytes, leaderboard_figure
from annotation.reports.export import DATA, FIGURES, figure_stems, file_names, group_title
from annotation.reports.frames import project_battles
from annotation.reports.selectors import round_report
from annotation.reports.stats import MODE_TITLES, Mode

logger = logging.getLogger(__name__)

# A queued or running build whose heartbeat is older than this lost its worker (or its task
# message): it is taken over. Every step of a build beats, and no step takes this long.
STALE_AFTER = timedelta(minutes=5)


def stale_before() -> datetime:
    return timezone.now() - STALE_AFTER


def report_build_run(
    *, build_id: int, on_progress: Callable[[int, int], None] | None = None
) -> str:
    """Run one build; safe to run twice (a finished or running build is left as it is).
    `on_progress(done, total)` hears each step, as the build's row records it."""
    claimed = (
        ReportBuild.objects.filter(pk=build_id)
        .filter(
            Q(status=ReportBuild.Status.QUEUED)
            | Q(status=ReportBuild.Status.RUNNING, heartbeat_at__lt=stale_before())
        )
        .update(status=ReportBuild.Status.RUNNING, heartbeat_at=timezone.now(), steps_done=0)
    )
    if not claimed:
        return "already built or being built"
    build = ReportBuild.objects.select_related("round__project").get(pk=build_id)
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        ReportBuild.objects.filter(pk=build_id).update(
            steps_done=done, steps_total=total, heartbeat_at=timezone.now()
        )
        if on_progress is not None:
            on_progress(done, total)

    try:
        page = _build(build, progress)
    except Exception:
        logger.exception("report build %s failed", build_id)
        ReportBuild.objects.filter(pk=build_id).update(
            status=ReportBuild.Status.FAILED,
            message=f"The report could not be built (report build {build_id} in the server log).",
            finished_at=timezone.now(),
        )
        return "failed"
    ReportBuild.objects.filter(pk=build_id).update(
        status=ReportBuild.Status.DONE, page=page, finished_at=timezone.now()
    )
    _drop_older(build)
    logger.info(
        "report build %s of round %s: built in %.2f s",
        build_id,
        build.round_id,
        time.perf_counter() - started,
    )
    return "built"


def _build(build: ReportBuild, progress: Callable[[int, int], None]) -> dict:
    round_ = build.round
    report = round_report(round_, include_excluded=build.include_excluded)
    battles = project_battles(round_.project_id)
    groups = battle_groups(battles)
    stems = figure_stems(report)
    total = 2 + len(stems) + len(groups) + 1
    done = 1
    progress(done, total)

    files: list[str] = []

    def store(name: str, content: bytes) -> None:
        # A build taken over from a dead worker writes its files again under the same names.
        path = f"{build.storage_folder}/{name}"
        default_storage.delete(path)
        default_storage.save(path, ContentFile(content))
        files.append(name)

    # Figure 1 and 2 per counting mode: the downloads are per annotation, as the command's.
    for stem in stems:
        figure = FIGURES[stem](report)
        for fmt in FORMATS:
            store(f"{stem}.{fmt}", figure_bytes(figure, fmt, salt=stem))
        store(f"{stem}-item.svg", figure_bytes(FIGURES[stem](report, "item"), "svg", salt=stem))
        done += 1
        progress(done, total)
    for name, render in DATA.items():
        store(name, render(report))
    done += 1
    progress(done, total)

    boards = {}
    for index, group in enumerate(groups):
        boards[group] = _leaderboard_section(build, battles, groups, index, store)
        done += 1
        progress(done, total)

    modes: tuple[Mode, ...] = ("annotation", "item")
    body = {mode: _body(build, report, mode) for mode in modes}
    progress(total, total)
    return {
        "body": body,
        "boards": boards,
        "board_groups": [[g, group_title(g)] for g in groups],
        "exclusions": [list(pair) for pair in report.exclusions],
        "downloads": file_names(report),
        "files": files,
    }


def _body(build: ReportBuild, report: RoundReport, mode: Mode) -> str:
    figures = {
        stem: f"{stem}.svg" if mode == "annotation" else f"{stem}-item.svg"
        for stem in figure_stems(report)
    }
    context = {
        "build": build,
        "round": build.round,
        "report": report,
        "mode_title": MODE_TITLES[mode],
        "outcome_rows": [
            (group_title(group), baseline, outcome)
            for group, cells in report.outcomes(mode).items()
            for baseline, outcome in cells.items()
        ],
        "humans_figure": figures["figure1"] if report.human_groups else None,
        "judges_figure": figures.get("figure2") if report.judge_groups else None,
    }
    return render_to_string("research/_report_body.html", context)


def _leaderboard_section(
    build: ReportBuild,
    battles: pd.DataFrame,
    groups: list[str],
    index: int,
    store: Callable[[str, bytes], None],
) -> dict[str, str]:
    """The leaderboard section from one group's verdicts, once per counting mode (its links
    keep the mode)."""
    group = groups[index]
    board = leaderboard(battles, group)
    title = group_title(group)
    figure = f"leaderboard-{index}.svg" if board else None
    if figure:
        store(figure, figure_bytes(leaderboard_figure(board, title=title), "svg", salt="board"))
    context = {
        "build": build,
        "round": build.round,
        "board": ranked(board, min_verdicts=settings.LEADERBOARD_MIN_VERDICTS),
        "min_verdicts": settings.LEADERBOARD_MIN_VERDICTS,
        "board_group": group,
        "board_groups": [(g, group_title(g)) for g in groups],
        "board_figure": figure,
        "board_title": title,
    }
    return {
        mode: render_to_string("research/_report_leaderboard.html", {**context, "mode": mode})
        for mode in MODE_TITLES
    }


def _drop_older(build: ReportBuild) -> None:
    """Delete the builds of the same report that this one replaces, with their files."""
    older = ReportBuild.objects.filter(
        round_id=build.round_id, include_excluded=build.include_excluded, pk__lt=build.pk
    ).exclude(status__in=ReportBuild.ACTIVE)
    for old in older:
        for name in old.page.get("files", []):
            default_storage.delete(f"{old.storage_folder}/{name}")
    older.delete()
