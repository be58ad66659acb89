"""Finding the stored build a report page or the API needs, or starting it: inline for a small
round, queued for a Celery worker for a large one; the command builds any round itself.
Concurrent viewers share one build."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from annotation.models import ReportBuild, Round
from annotation.report_builds.tasks import build_report
from annotation.report_builds.worker import report_build_run, stale_before
from annotation.reports.selectors import report_fingerprint

# How long a request waits for a small round's build that another request is running.
INLINE_WAIT_SECONDS = 30.0
POLL_SECONDS = 0.05
# How often the command looks at a build that another process runs.
COMMAND_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class ReportState:
    """What a report page can show: the newest finished build (None before the first one
    ends), whether it is of the round's data as it is now, and the build under way or failed."""

    shown: ReportBuild | None
    current: bool
    building: ReportBuild | None
    failed: ReportBuild | None


def report_state(*, round_: Round, include_excluded: bool) -> ReportState:
    """The round's report as stored, building it first when the round is small enough."""
    fingerprint, annotations = report_fingerprint(round_, include_excluded=include_excluded)
    inline = annotations <= settings.REPORT_INLINE_MAX_ANNOTATIONS
    key = {"round": round_, "include_excluded": include_excluded}
    build = _build_for(key, fingerprint, annotations, inline=inline)
    if inline and build.status in ReportBuild.ACTIVE:
        build = _built_here(build)
        if build.fingerprint != fingerprint and build.status not in ReportBuild.ACTIVE:
            # The build waited on was of an older state of the round; ours can start now.
            build = _built_here(_build_for(key, fingerprint, annotations, inline=True))
    shown = build if build.status == ReportBuild.Status.DONE else None
    if shown is None:
        shown = ReportBuild.objects.filter(**key, status=ReportBuild.Status.DONE).last()
    return ReportState(
        shown=shown,
        current=shown is not None and shown.fingerprint == fingerprint,
        building=build if build.status in ReportBuild.ACTIVE else None,
        failed=build if build.status == ReportBuild.Status.FAILED else None,
    )


def report_build_current(
    *,
    round_: Round,
    include_excluded: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReportBuild:
    """The build of the round's report as its data are now, whatever the round's size: the
    stored one, else built in this process, or waited for while another process builds it (and
    taken over if that process dies). `on_progress(done, total)` hears the steps of a large
    round's build (above REPORT_INLINE_MAX_ANNOTATIONS). The build returned may have failed."""
    fingerprint, annotations = report_fingerprint(round_, include_excluded=include_excluded)
    key = {"round": round_, "include_excluded": include_excluded}
    large = annotations > settings.REPORT_INLINE_MAX_ANNOTATIONS
    for _ in range(3):
        build = _build_for(key, fingerprint, annotations, inline=True)
        build = _built_here(build, wait_seconds=None, on_progress=on_progress if large else None)
        # Otherwise the build waited on was of an older state of the round; ours can start now.
        if build.fingerprint == fingerprint:
            return build
    raise RuntimeError("The round changed while its report was built; run it again.")


def _build_for(key: dict, fingerprint: str, annotations: int, *, inline: bool) -> ReportBuild:
    """The build of this fingerprint, else the one under way for the report, else a new one
    (queued on a worker unless the caller builds it)."""
    for _ in range(3):
        found = (
            ReportBuild.objects.filter(**key)
            .filter(Q(fingerprint=fingerprint) | Q(status__in=ReportBuild.ACTIVE))
            .order_by("-pk")
            .first()
        )
        if found is not None:
            if found.status in ReportBuild.ACTIVE and found.heartbeat_at < stale_before():
                _take_over(found, inline=inline)
                found.refresh_from_db()
            return found
        try:
            with transaction.atomic():
                build = ReportBuild.objects.create(
                    **key, fingerprint=fingerprint, annotations=annotations
                )
        except IntegrityError:
            # Another request started this build, or another one, at the same moment.
            continue
        if not inline:
            transaction.on_commit(partial(build_report.delay, build.pk))
        return build
    raise RuntimeError("No report build could be found or started.")


def _take_over(build: ReportBuild, *, inline: bool) -> None:
    """Queue again a build whose worker died or whose task message was lost; of concurrent
    viewers, only the one whose update lands queues it."""
    revived = ReportBuild.objects.filter(pk=build.pk, heartbeat_at=build.heartbeat_at).update(
        status=ReportBuild.Status.QUEUED, heartbeat_at=timezone.now()
    )
    if revived and not inline:
        transaction.on_commit(lambda: build_report.delay(build.pk))


def _built_here(
    build: ReportBuild,
    *,
    wait_seconds: float | None = INLINE_WAIT_SECONDS,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReportBuild:
    """Run a build in this process, or wait for the process running it: for `wait_seconds` (a
    page's request), or, for None (the command), until it ends, taking over a build whose
    process died."""
    if build.status == ReportBuild.Status.QUEUED:
        report_build_run(build_id=build.pk, on_progress=on_progress)
    deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
    poll = COMMAND_POLL_SECONDS if deadline is None else POLL_SECONDS
    heard = (0, 0)
    build.refresh_from_db()
    while build.status in ReportBuild.ACTIVE:
        if deadline is not None and time.monotonic() >= deadline:
            break
        if deadline is None and (
            build.status == ReportBuild.Status.QUEUED or build.heartbeat_at < stale_before()
        ):
            report_build_run(build_id=build.pk, on_progress=on_progress)
        else:
            if on_progress is not None and (build.steps_done, build.steps_total) != heard:
                heard = (build.steps_done, build.steps_total)
                on_progress(*heard)
            time.sleep(poll)
        build.refresh_from_db()
    return build
