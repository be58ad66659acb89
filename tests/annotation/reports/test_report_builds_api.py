"""The API's report summary is served from the round's stored report build, as the page is."""

import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import ReportBuild, Round
from annotation.report_builds.worker import report_build_run
from annotation.reports.selectors import round_report
from tests.annotation.reports.test_report import annotate
from tests.annotation.reports.test_report_builds import (
    builds_logged,
    computes_the_report,
    failed_build,
)

pytestmark = pytest.mark.django_db


def report(client, round_: Round):
    return client.get(f"/api/rounds/{round_.pk}/report/")


def test_a_second_call_of_an_unchanged_round_is_served_from_the_stored_build(
    client, round_, caplog
):
    caplog.set_level(logging.INFO, logger="annotation.report_builds.worker")
    first = report(client, round_)
    build = ReportBuild.objects.get()

    with CaptureQueriesContext(connection) as queries:
        again = report(client, round_)

    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == round_report(round_).summary()
    assert not computes_the_report(queries)
    assert len(queries) <= 10, [q["sql"] for q in queries.captured_queries]
    assert builds_logged(caplog) == 1
    assert ReportBuild.objects.get().finished_at == build.finished_at


def test_a_new_annotation_gives_the_next_call_a_new_build(client, round_):
    before = report(client, round_).json()
    old = ReportBuild.objects.get()

    annotate(round_, "author", "researcher", "b", baseline="alpaca")
    after = report(client, round_).json()

    new = ReportBuild.objects.get()  # the old build is gone
    assert new.pk != old.pk and new.annotations == old.annotations + 1
    assert "author" not in before["groups"]
    assert after == round_report(round_).summary()
    assert after["groups"]["author"]["alpaca"]["n"] == 1


def test_a_large_round_answers_202_with_progress_then_200_once_built(client, round_, settings):
    settings.REPORT_INLINE_MAX_ANNOTATIONS = 0

    with CaptureQueriesContext(connection) as queries:
        waiting = report(client, round_)
    polled = report(client, round_)
    build = ReportBuild.objects.get()
    report_build_run(build_id=build.pk)
    built = report(client, round_)

    assert waiting.status_code == polled.status_code == 202
    assert waiting["Retry-After"] == "5"
    assert waiting.json() == {
        "detail": "The report is being built; ask again in a moment.",
        "status": "queued",
        "steps_done": 0,
        "steps_total": 0,
        "annotations": 8,
    }
    assert not computes_the_report(queries)
    assert built.status_code == 200
    assert built.json() == round_report(round_).summary()
    assert ReportBuild.objects.get().pk == build.pk


def test_a_failed_build_answers_500_with_its_message(client, round_):
    failed_build(round_)

    response = report(client, round_)

    assert response.status_code == 500
    assert response.json() == {
        "detail": "The report could not be built (report build 1 in the server log)."
    }
