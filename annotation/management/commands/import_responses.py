from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.imports.projects import import_project
from annotation.imports.records import ImportFailed, load_file
from annotation.imports.responses import responses_import
from annotation.management.commands._progress import progress_line


class Command(BaseCommand):
    help = (
        "Import model responses to a prompt set's prompts, matched by prompt_id or by the "
        "exact prompt/instruction text: records {prompt_id, output, model} or AlpacaEval "
        "model_outputs {instruction, output, generator}."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--set", dest="set_name", required=True, help="Prompt set name.")
        parser.add_argument(
            "--model", help="The model for every response (overrides 'model' / 'generator')."
        )
        parser.add_argument("--project", default="default")

    def handle(self, *args, path: str, set_name: str, model: str | None, project: str, **options):
        try:
            raw, file = load_file(path)
            with transaction.atomic():
                project_obj = import_project(name=project, file=file)
                summary = responses_import(
                    project=project_obj,
                    set_name=set_name,
                    raw=raw,
                    file=file,
                    model_name=model,
                    progress=progress_line(self.stderr),
                )
        except ImportFailed as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"{file}: {summary.created} responses added to set {set_name!r} "
            f"({summary.skipped} already there)."
        )
        if summary.models_created:
            self.stdout.write(f"New models: {', '.join(summary.models_created)}.")
