from django.core.management.base import BaseCommand, CommandError

from annotation.imports.alpaca_eval import alpaca_eval_import
from annotation.imports.records import ImportFailed, load_file
from annotation.links import crowd_link
from annotation.management.commands._progress import progress_line
from annotation.models import Project
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
            "--candidate", required=True, help="The generator compared against the baseline."
        )
        parser.add_argument("--set", dest="set_name", default="alpaca_eval")
        parser.add_argument("--project", default="default")

    def handle(self, *args, path: str, candidate: str, set_name: str, project: str, **options):
        project_obj, _ = Project.objects.get_or_create(name=project)
        try:
            raw, file = load_file(path)
            summary = alpaca_eval_import(
                project=project_obj,
                raw=raw,
                file=file,
                candidate_name=candidate,
                set_name=set_name,
                progress=progress_line(self.stderr),
            )
        except (ImportFailed, RoundInvalid) as error:
            raise CommandError(str(error)) from error
        round_ = summary.round
        assert round_ is not None  # alpaca_eval_import always sets the round it filled.
        self.stdout.write(
            f"{file}: {summary.created} judge annotations added "
            f"({summary.skipped} already there); {round_.items.count()} items in the round."
        )
        if summary.models_created:
            self.stdout.write(f"New models: {', '.join(summary.models_created)}.")
        self.stdout.write(f"Round {round_.pk}: {round_.name}")
        self.stdout.write(f"Crowd link: {crowd_link(round_)}")
