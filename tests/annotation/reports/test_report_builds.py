"""A round's report is built once per state of its data and served from the stored build."""

import logging
import re
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from annotation.models import ReportBuild, Round
from annotation.reports.selectors import report_fingerprint
from tests.annotation.reports.test_report import annotate, served

pytestmark = pytest.mark.django_db


def page(client, round_: Round, **query: str) -> str:
    """The report part of the page (the rest carries the session's CSRF token)."""
    response = client.get(reverse("round-report", args=[round_.pk]), query)
    assert response.status_code == 200
    html = response.content.decode()
    return html[html.index('<div id="report"') :]


def computes_the_report(queries: CaptureQueriesContext) -> bool:
    """Whether any query read the round's annotation frame (what a build does first)."""
    return any('"seconds_spent"' in query["sql"] for query in queries.captured_queries)


def builds_logged(caplog) -> int:
    return sum("built in" in record.getMessage() for record in caplog.records)


def test_it_builds_a_report_once_and_serves_the_next_view_from_the_stored_build(
    client, round_, caplog
):
    caplog.set_level(logging.INFO, logger="annotation.report_builds.worker")
    first = page(client, round_)
    build = ReportBuild.objects.get()

    with CaptureQueriesContext(connection) as queries:
        again = page(client, round_)

    assert build.status == ReportBuild.Status.DONE
    assert not computes_the_report(queries)
    assert len(queries) <= 10, [q["sql"] for q in queries.captured_queries]
    assert again == first
    assert builds_logged(caplog) == 1
    assert ReportBuild.objects.get().finished_at == build.finished_at


def test_a_new_annotation_makes_the_next_view_build_again(client, round_):
    page(client, round_)
    old = ReportBuild.objects.get()

    annotate(round_, "author", "researcher", "b", baseline="alpaca")
    html = page(client, round_)

    new = ReportBuild.objects.get()  # the old build and its files are gone
    assert new.pk != old.pk and new.annotations == old.annotations + 1
    assert "Authors" in html
    assert reverse("round-report-figure", args=[round_.pk, old.pk, "figure1.svg"]) not in html


def test_an_exclusion_or_a_rename_changes_the_fingerprint(round_):
    before, _ = report_fingerprint(round_, include_excluded=False)
    session = round_.worker_sessions.create(annotator=round_.project.annotators.get(name="w1"))
    session.excluded_at = timezone.now()
    session.save()
    excluded, _ = report_fingerprint(round_, include_excluded=False)
    round_.candidate.name = "renamed"
    round_.candidate.save()
    renamed, _ = report_fingerprint(round_, include_excluded=False)

    assert len({before, excluded, renamed}) == 3
    assert report_fingerprint(round_, include_excluded=True)[0] != renamed


def test_every_download_and_figure_is_served_from_the_build_the_page_showed(client, round_):
    html = page(client, round_)
    build = ReportBuild.objects.get()
    links = re.findall(r'href="([^"]*/download/[^"]+)"', html)
    figures = re.findall(r'<img src="([^"]+)"', html)

    with CaptureQueriesContext(connection) as queries:
        bodies = {link: served(client.get(link)) for link in [*links, *figures]}

    assert len(links) == len(build.page["downloads"]) == 9
    assert all(f"?build={build.pk}" in link for link in links)
    assert len(figures) == 3 and all(bodies.values())
    assert not computes_the_report(queries)
    # Without the build named, a download is the current report's, built once as well.
    plain = client.get(reverse("round-report-download", args=[round_.pk, "summary.json"]))
    assert served(plain) == bodies[links[-1]]
    assert ReportBuild.objects.get().pk == build.pk


def test_a_download_of_a_replaced_build_asks_for_a_reload(client, round_):
    html = page(client, round_)
    link = re.findall(r'href="([^"]*/download/summary\.json[^"]*)"', html)[0]
    annotate(round_, "author", "researcher", "b", baseline="alpaca")
    page(client, round_)

    response = client.get(link)

    assert response.status_code == 404
    assert b"reload the report page" in response.content


def test_a_build_whose_worker_died_is_taken_over(client, round_):
    fingerprint, annotations = report_fingerprint(round_, include_excluded=False)
    dead = ReportBuild.objects.create(
        round=round_,
        fingerprint=fingerprint,
        annotations=annotations,
        status=ReportBuild.Status.RUNNING,
    )
    ReportBuild.objects.filter(pk=dead.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=10)
    )

    html = page(client, round_)

    dead.refresh_from_db()
    assert dead.status == ReportBuild.Status.DONE
    assert "Human preference (Figure 1)" in html


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_first_views_build_the_report_once(round_, caplog):
    caplog.set_level(logging.INFO, logger="annotation.report_builds.worker")
    user = round_.project.members.get()
    start = threading.Barrier(2)
    pages: list[str] = []

    def view() -> None:
        client = Client()
        client.force_login(user)
        start.wait()
        try:
            pages.append(page(client, round_))
        finally:
            connection.close()

    threads = [threading.Thread(target=view) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(pages) == 2 and pages[0] == pages[1]
    assert "Human preference (Figure 1)" in pages[0]
    assert ReportBuild.objects.count() == 1
    assert builds_logged(caplog) == 1


def failed_build(round_: Round) -> ReportBuild:
    """The round's current build, as one that failed."""
    fingerprint, annotations = report_fingerprint(round_, include_excluded=False)
    return ReportBuild.objects.create(
        round=round_,
        fingerprint=fingerprint,
        annotations=annotations,
        status=ReportBuild.Status.FAILED,
        message="The report could not be built (report build 1 in the server log).",
    )
