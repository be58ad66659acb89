"""A finished build's stored files read back: the API's summary, the command's folder."""

import json
from collections.abc import Sequence
from pathlib import Path

from django.core.files.storage import default_storage

from annotation.models import ReportBuild
from annotation.reports.export import DATA


def report_build_file(build: ReportBuild, name: str) -> bytes:
    with default_storage.open(f"{build.storage_folder}/{name}", "rb") as stored:
        return stored.read()


def report_build_summary(build: ReportBuild) -> dict:
    """summary.json of the build, as RoundReport.summary() gave it."""
    return json.loads(report_build_file(build, "summary.json"))


def report_build_write(build: ReportBuild, out: Path, formats: Sequence[str]) -> list[Path]:
    """Write the build's files in `formats` into `out` (created if needed), in the order and
    under the names export.report_write gives them; return their paths."""
    stems = dict.fromkeys(
        name.partition(".")[0] for name in build.page["downloads"] if name not in DATA
    )
    names = [f"{stem}.{fmt}" for stem in stems for fmt in formats] + list(DATA)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        written.append(out / name)
        written[-1].write_bytes(report_build_file(build, name))
    return written
