from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.imports.alpaca_eval import alpaca_eval_import
from annotation.imports.projects import import_project
from annotation.imports.records import ImportFailed, load_file
from annotation.links import crowd_link
from annotation.management.commands._progress import progress_line
from annotation.reports.alpaca_eval import alpaca_eval_figures
from annotation.selectors import round_judge_preferences
from annotation.services.rounds import RoundInvalid


class Command(BaseCommand):
    help = (
        "Import an AlpacaEval annotations.json: its prompts, both models' responses, a round "
        "(the candidate against the other generator) and each verdict as a model judge's "
        "annotation."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument(
            "--candidate-generator",
            help="The file's generator evaluated against the other (default: generator_2, "
            "AlpacaEval's evaluated model; or --candidate when it names a generator).",
        )
        parser.add_argument(
            "--candidate", help="The platform's name for the candidate (default: its generator)."
        )
        parser.add_argument(
            "--baseline", help="The platform's name for the baseline (default: its generator)."
        )
        parser.add_argument("--set", dest="set_name", default="alpaca_eval")
        parser.add_argument("--project", default="default")

    def handle(self, *args, path: str, set_name: str, project: str, **options):
        try:
            raw, file = load_file(path)
            with transaction.atomic():
                project_obj = import_project(name=project, file=file)
                summary = alpaca_eval_import(
                    project=project_obj,
                    raw=raw,
                    file=file,
                    candidate_generator=options["candidate_generator"],
                    candidate_name=options["candidate"],
                    baseline_name=options["baseline"],
                    set_name=set_name,
                    progress=progress_line(self.stderr),
                )
        except (ImportFailed, RoundInvalid) as error:
            raise CommandError(str(error)) from error
        for reason, count in sorted(summary.dropped.items()):
            self.stdout.write(f"{file}: {count} records dropped: {reason}.")
        if summary.empty_outputs:
            self.stdout.write(
                f"{file}: {summary.empty_outputs} verdicts on an empty output_1 or output_2 "
                "kept, as AlpacaEval counts them."
            )
        round_ = summary.round
        if round_ is None:
            self.stdout.write(f"{file}: nothing left to compare; no round was made.")
            return
        self.stdout.write(
            f"{file}: {summary.created} judge annotations added "
            f"({summary.skipped} already there); {round_.items.count()} items in the round."
        )
        if summary.conflicts:
            self.stdout.write(
                f"{file}: {summary.conflicts} verdicts differ from those already stored for the "
                "same judge and item; the stored ones were kept."
            )
        if summary.models_created:
            self.stdout.write(f"New models: {', '.join(summary.models_created)}.")
        for judge, preferences in round_judge_preferences(round_).items():
            figures = alpaca_eval_figures(preferences)
            if figures is None:
                continue
            self.stdout.write(
                f"{judge}: {summary.candidate} against {summary.baseline}: win rate "
                f"{figures.win_rate} (standard error {figures.standard_error}); "
                f"{figures.n_wins} wins, {figures.n_wins_base} losses, {figures.n_draws} draws "
                f"of {figures.n_total}; discrete win rate {figures.discrete_win_rate}."
            )
        self.stdout.write(f"Round {round_.pk}: {round_.name}")
        self.stdout.write(f"Crowd link: {crowd_link(round_)}")
