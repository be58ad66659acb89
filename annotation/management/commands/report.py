from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.models import ReportBuild, Round
from annotation.report_builds.files import report_build_summary, report_build_write
from annotation.report_builds.services import report_build_current
from annotation.reports.charts import FORMATS
from annotation.reports.export import report_write
from annotation.reports.selectors import round_report
from annotation.reports.stats import DEFAULT_RESAMPLES, DEFAULT_SEED


def formats_list(value: str) -> list[str]:
    formats = [fmt.strip() for fmt in value.split(",") if fmt.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise CommandError(
            f"--formats: unknown {', '.join(unknown) or 'empty list'}; "
            f"choose from {','.join(FORMATS)}"
        )
    return formats


class Command(BaseCommand):
    help = (
        "Write a round's report: figure1 (humans) and figure2 (judges) in each format, "
        "agreement.csv, annotations.jsonl and summary.json. With the default resamples and "
        "seed, from the report's stored build (the page's and the API's), built first if the "
        "round changed since."
    )

    def add_arguments(self, parser):
        parser.add_argument("round", type=int, help="The round's id.")
        parser.add_argument("--out", required=True, type=Path, help="Folder, created if new.")
        parser.add_argument("--formats", default=",".join(FORMATS), help="e.g. png,svg,pdf")
        parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES)
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED)

    def handle(self, *args, round: int, out: Path, formats: str, resamples: int, seed: int, **_):
        chosen = formats_list(formats)
        if resamples < 1:
            raise CommandError("--resamples must be at least 1.")
        round_ = Round.objects.select_related("candidate").filter(pk=round).first()
        if round_ is None:
            raise CommandError(f"No round with id {round}.")
        # Stored builds are of the default resamples and seed only.
        build = None
        if (resamples, seed) == (DEFAULT_RESAMPLES, DEFAULT_SEED):
            build = report_build_current(round_=round_, on_progress=self._progress)
            if build.status != ReportBuild.Status.DONE:
                # Computed here instead, so that whatever failed is raised with its traceback.
                self.stderr.write(f"{build.message} Computing the report without storing it.")
                build = None
        if build is not None:
            written = report_build_write(build, out, chosen)
            summary = report_build_summary(build)
        else:
            report = round_report(round_, resamples=resamples, seed=seed)
            written = report_write(report, out, chosen)
            summary = report.summary()
        for path in written:
            self.stdout.write(str(path))
        for group, cells in summary["groups"].items():
            for baseline, outcome in cells.items():
                assert outcome["ci95"] is not None  # outcomes() gives every cell an interval.
                low, high = outcome["ci95"]
                self.stdout.write(
                    f"{group:>12} vs {baseline}: {outcome['wins']} wins, {outcome['ties']} ties, "
                    f"{outcome['losses']} losses (n={outcome['n']}); win rate "
                    f"{outcome['win_rate']:.1f}% [{low:.1f}, {high:.1f}]"
                )

    def _progress(self, done: int, total: int) -> None:
        self.stderr.write(f"Building the report: step {done} of {total}")
