"""A round's report page and its downloads, served from the report's stored build (see
annotation.report_builds): the same report the CLI writes and the API serves."""

import csv
import mimetypes

import pandas as pd
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotFound,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from annotation import selectors
from annotation.http import ResearcherRequest
from annotation.links import crowd_link
from annotation.models import ReportBuild, Round
from annotation.report_builds.services import report_state
from annotation.reports.charts import figure_bytes, ratings_figure
from annotation.reports.ratings import LABELLED, rating_agreement, rating_rows, rating_tables
from annotation.reports.stats import MODE_TITLES, Mode

CONTENT_TYPES = {".jsonl": "application/x-ndjson", ".csv": "text/csv; charset=utf-8"}
# Builds are never changed once done: their figures can be kept by the browser.
FIGURE_MAX_AGE = 24 * 3600


def _round(request: ResearcherRequest, round_id: int) -> Round:
    rounds = selectors.rounds_for_user(request.user).select_related("candidate", "project")
    return get_object_or_404(rounds, pk=round_id)


@login_required
@require_GET
def round_report_page(request: ResearcherRequest, round_id: int) -> HttpResponse:
    round_ = _round(request, round_id)
    if round_.is_absolute:
        # Its answers are rated, not compared: their report is the ratings page.
        return redirect("round-ratings", round_id=round_.pk)
    mode: Mode = "item" if request.GET.get("mode") == "item" else "annotation"
    with_excluded = request.GET.get("excluded") == "include"
    state = report_state(round_=round_, include_excluded=with_excluded)
    context: dict = {
        "round": round_,
        "state": state,
        "build": state.shown,
        "mode": mode,
        "modes": MODE_TITLES,
        "with_excluded": with_excluded,
    }
    if state.shown is not None:
        page = state.shown.page
        groups = [group for group, _ in page["board_groups"]]
        asked = request.GET.get("leaderboard")
        group = asked if asked in groups else (groups[0] if groups else "")
        # Rendered from the report by the build, with the page's escaping (see the templates
        # research/_report_body.html and research/_report_leaderboard.html).
        context |= {
            "body": mark_safe(page["body"][mode]),
            "board": mark_safe(page["boards"][group][mode]) if group else "",
            "board_group": group,
            "exclusions": page["exclusions"],
            "downloads": page["downloads"],
        }
    template = "research/_report.html" if request.htmx else "research/report.html"
    return render(request, template, context)


def _stored(build: ReportBuild, name: str, *, attachment: bool) -> FileResponse:
    if name not in build.page.get("files", []):
        raise Http404(f"The report has no file named {name!r}.")
    suffix = name[name.rindex(".") :]
    content_type = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0]
    return FileResponse(
        default_storage.open(f"{build.storage_folder}/{name}", "rb"),
        content_type=content_type or "application/octet-stream",
        as_attachment=attachment,
        filename=f"round-{build.round_id}-{name}",
    )


@login_required
@require_GET
def round_report_download(request: ResearcherRequest, round_id: int, name: str) -> HttpResponseBase:
    """One file of the build the page showed (`?build=`), or of the round's current report."""
    round_ = _round(request, round_id)
    asked = request.GET.get("build", "")
    if asked:
        build = ReportBuild.objects.filter(
            round=round_, pk=int(asked) if asked.isdigit() else 0, status=ReportBuild.Status.DONE
        ).first()
        if build is None:
            return HttpResponseNotFound(
                "A newer report replaced this one: reload the report page.",
                content_type="text/plain; charset=utf-8",
            )
    else:
        state = report_state(round_=round_, include_excluded=False)
        if not state.current or state.shown is None:
            response = HttpResponse(
                "The report is being built; try again in a moment.",
                status=503,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = "5"
            return response
        build = state.shown
    if name not in build.page.get("downloads", []):
        raise Http404(f"The report has no file named {name!r}.")
    return _stored(build, name, attachment=True)


@login_required
@require_GET
def round_report_figure(
    request: ResearcherRequest, round_id: int, build_id: int, name: str
) -> HttpResponseBase:
    """A figure the page shows, from the build that drew it."""
    round_ = _round(request, round_id)
    build = get_object_or_404(
        ReportBuild, round=round_, pk=build_id, status=ReportBuild.Status.DONE
    )
    if not name.endswith(".svg"):
        raise Http404(f"The report has no figure named {name!r}.")
    response = _stored(build, name, attachment=False)
    response["Cache-Control"] = f"private, max-age={FIGURE_MAX_AGE}, immutable"
    return response


@login_required
@require_GET
def round_ratings_page(request: ResearcherRequest, round_id: int) -> HttpResponse:
    """The absolute ratings of the round's answers: per group and scale, each model's mean or
    label shares with their interval and a figure, then the agreement within and across
    groups on the same answers."""
    round_ = _round(request, round_id)
    rows = rating_rows(round_.project_id, round_id=round_.pk)
    tables = rating_tables(rows)
    figure = reverse("round-ratings-figure", args=[round_.pk])
    context = {
        "round": round_,
        "tables": [
            (
                table,
                LABELLED.get(table.scale),
                f"{figure}?{urlencode({'group': table.group, 'scale': table.scale})}",
            )
            for table in tables
        ],
        "agreement": rating_agreement(rows),
        "csv_url": reverse("round-ratings-csv", args=[round_.pk]),
        "crowd_link": crowd_link(round_) if round_.is_absolute else "",
    }
    return render(request, "research/round_ratings.html", context)


RATINGS_CSV_COLUMNS = ["group", "annotator", "kind", "model", "question", "turn", "scale"]


@login_required
@require_GET
def round_ratings_csv(request: ResearcherRequest, round_id: int) -> HttpResponse:
    """Every rating the page counts, one row each, with its group, label and score."""
    round_ = _round(request, round_id)
    rows = rating_rows(round_.project_id, round_id=round_.pk)
    response = HttpResponse(content_type=CONTENT_TYPES[".csv"])
    response["Content-Disposition"] = f'attachment; filename="round-{round_.pk}-ratings.csv"'
    writer = csv.writer(response)
    writer.writerow([*RATINGS_CSV_COLUMNS, "label", "score"])
    for row in rows.itertuples(index=False):
        score = "" if pd.isna(row.score) else f"{row.score:g}"
        writer.writerow(
            [*(getattr(row, column) for column in RATINGS_CSV_COLUMNS), row.label, score]
        )
    return response


@login_required
@require_GET
def round_ratings_figure(request: ResearcherRequest, round_id: int) -> HttpResponse:
    """One group's figure on one scale (`?group=&scale=`: a judge's name may hold any
    character), as PNG."""
    round_ = _round(request, round_id)
    group, scale = request.GET.get("group", ""), request.GET.get("scale", "")
    rows = rating_rows(round_.project_id, round_id=round_.pk, scale=scale)
    for table in rating_tables(rows):
        if table.group == group:
            figure = figure_bytes(ratings_figure(table), "png", salt=f"ratings-{group}")
            return HttpResponse(figure, content_type="image/png")
    raise Http404(f"No ratings by {group!r} on the scale {scale!r} in this round.")
