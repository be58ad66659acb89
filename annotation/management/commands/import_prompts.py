from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.imports.projects import import_project
from annotation.imports.prompts import prompts_import
from annotation.imports.records import ImportFailed, load_file
from annotation.management.commands._progress import progress_line


class Command(BaseCommand):
    help = (
        "Import prompts from a JSON array or JSON Lines file into a prompt set: records "
        "{id, prompt}, {instruction} (AlpacaEval) or {conversations, source} (LIMA release)."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--set", dest="set_name", required=True, help="Prompt set name.")
        parser.add_argument("--project", default="default")
        parser.add_argument(
            "--sensitive",
            action="store_true",
            help="Mark the set sensitive (prompts that may ask for harm): for the safety judge.",
        )

    def handle(self, *args, path: str, set_name: str, project: str, **options):
        try:
            raw, file = load_file(path)
            with transaction.atomic():
                project_obj = import_project(name=project, file=file)
                summary = prompts_import(
                    project=project_obj,
                    set_name=set_name,
                    raw=raw,
                    file=file,
                    progress=progress_line(self.stderr),
                    sensitive=options["sensitive"],
                )
        except ImportFailed as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"{file}: {summary.created} prompts added to set {set_name!r} "
            f"({summary.skipped} already there)"
            + ("; the set is marked sensitive." if options["sensitive"] else ".")
        )
