"""`manage.py report` writes the round's stored report build when it is current (the page's
and the API's), else builds and stores it first, and prints what it printed when it computed
the report itself."""

import logging
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotation.models import ReportBuild, Round
from annotation.report_builds.worker import STALE_AFTER
from annotation.reports.export import report_write
from annotation.reports.selectors import report_fingerprint, round_report
from tests.annotation.reports.test_report import annotate
from tests.annotation.reports.test_report_builds import (
    builds_logged,
    computes_the_report,
    failed_build,
)
from tests.factories import make_project, make_round, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def round_(client) -> Round:
    user = make_user()
    round_ = make_round(
        prompts=4, baselines=("alpaca", "davinci"), project=make_project("lab", user)
    )
    for baseline in ("alpaca", "davinci"):
        annotate(round_, "crowd", "w1", "cctb", baseline=baseline)
        annotate(round_, "author", "researcher", "ctcb", baseline=baseline)
        annotate(round_, "judge", "gpt-4", "ccbb", baseline=baseline)
    client.force_login(user)
    return round_


def report_command(round_: Round, out: Path, *args: str) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command("report", str(round_.pk), "--out", str(out), *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def computed(round_: Round, out: Path, formats: list[str]) -> str:
    """What the command printed when it computed the report itself, its files written to `out`."""
    report = round_report(round_)
    lines = [str(path) for path in report_write(report, out, formats)]
    for group, cells in report.per_annotation.items():
        for baseline, outcome in cells.items():
            assert outcome.ci95 is not None
            low, high = outcome.ci95
            lines.append(
                f"{group:>12} vs {baseline}: {outcome.wins} wins, {outcome.ties} ties, "
                f"{outcome.losses} losses (n={outcome.n}); win rate "
                f"{outcome.win_rate:.1f}% [{low:.1f}, {high:.1f}]"
            )
    return "".join(f"{line}\n" for line in lines)


def files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_it_prints_and_writes_what_computing_the_report_gave(round_, tmp_path):
    expected = computed(round_, tmp_path / "expected", ["png", "svg", "pdf"])

    stdout, stderr = report_command(round_, tmp_path / "out")

    assert stdout == expected.replace(str(tmp_path / "expected"), str(tmp_path / "out"))
    assert stderr == ""
    assert files(tmp_path / "out") == files(tmp_path / "expected")
    assert ReportBuild.objects.get().status == ReportBuild.Status.DONE


def test_it_writes_the_formats_asked_for_in_their_order_as_the_page_serves_them(round_, tmp_path):
    out = tmp_path / "out"
    stdout, _ = report_command(round_, out, "--formats", "svg,png")

    build = ReportBuild.objects.get()
    names = [Path(line).name for line in stdout.splitlines()[:7]]
    assert names == [
        "figure1.svg",
        "figure1.png",
        "figure2.svg",
        "figure2.png",
        "agreement.csv",
        "annotations.jsonl",
        "summary.json",
    ]
    for name in names:
        stored = default_storage.open(f"{build.storage_folder}/{name}", "rb").read()
        assert (out / name).read_bytes() == stored
    assert sorted(path.name for path in out.iterdir()) == sorted(names)


def test_it_reuses_the_build_the_api_stored_and_the_api_reuses_its_build(
    client, round_, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="annotation.report_builds.worker")
    client.get(f"/api/rounds/{round_.pk}/report/")
    build = ReportBuild.objects.get()

    with CaptureQueriesContext(connection) as queries:
        first, _ = report_command(round_, tmp_path / "first")
    annotate(round_, "crowd", "w2", "b", baseline="alpaca")
    second, _ = report_command(round_, tmp_path / "second")
    with CaptureQueriesContext(connection) as api_queries:
        summary = client.get(f"/api/rounds/{round_.pk}/report/").json()

    assert not computes_the_report(queries)
    assert builds_logged(caplog) == 2
    new = ReportBuild.objects.get()
    assert new.pk != build.pk and new.annotations == build.annotations + 1
    assert not computes_the_report(api_queries)
    assert summary == round_report(round_).summary()
    assert "       crowd vs alpaca: 2 wins, 1 ties, 1 losses (n=4)" in first
    assert "       crowd vs alpaca: 2 wins, 1 ties, 2 losses (n=5)" in second


def test_it_builds_a_large_round_itself_and_prints_progress_apart(round_, tmp_path, settings):
    settings.REPORT_INLINE_MAX_ANNOTATIONS = 0
    expected = computed(round_, tmp_path / "expected", ["png", "svg", "pdf"])

    stdout, stderr = report_command(round_, tmp_path / "out")

    build = ReportBuild.objects.get()
    assert build.status == ReportBuild.Status.DONE
    assert stdout == expected.replace(str(tmp_path / "expected"), str(tmp_path / "out"))
    steps = stderr.splitlines()
    assert steps[0] == f"Building the report: step 1 of {build.steps_total}"
    assert steps[-1] == f"Building the report: step {build.steps_total} of {build.steps_total}"


def test_it_waits_for_a_build_under_way_and_takes_it_over_when_its_worker_dies(round_, tmp_path):
    fingerprint, annotations = report_fingerprint(round_, include_excluded=False)
    running = ReportBuild.objects.create(
        round=round_,
        fingerprint=fingerprint,
        annotations=annotations,
        status=ReportBuild.Status.RUNNING,
    )
    # Its worker's last beat: the build goes stale a second into the command's wait.
    ReportBuild.objects.filter(pk=running.pk).update(
        heartbeat_at=timezone.now() - STALE_AFTER + timedelta(seconds=1)
    )

    stdout, _ = report_command(round_, tmp_path / "out", "--formats", "png")

    running.refresh_from_db()
    assert running.status == ReportBuild.Status.DONE
    assert ReportBuild.objects.get().pk == running.pk
    assert str(tmp_path / "out" / "summary.json") in stdout


def test_it_computes_the_report_when_the_stored_build_failed(round_, tmp_path):
    failed_build(round_)
    expected = computed(round_, tmp_path / "expected", ["svg"])

    stdout, stderr = report_command(round_, tmp_path / "out", "--formats", "svg")

    assert stdout == expected.replace(str(tmp_path / "expected"), str(tmp_path / "out"))
    assert "Computing the report without storing it." in stderr
    assert ReportBuild.objects.get().status == ReportBuild.Status.FAILED


def test_other_resamples_or_seeds_are_computed_without_a_build(round_, tmp_path):
    report_command(round_, tmp_path / "out", "--formats", "svg", "--seed", "3")

    assert not ReportBuild.objects.exists()
    assert (tmp_path / "out" / "summary.json").exists()
