from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.imports.projects import import_project
from annotation.imports.records import ImportFailed, load_file
from inference.dialogue.imports import dialogues_import


class Command(BaseCommand):
    help = (
        "Import conversations to label turn by turn (LIMA §6): JSON Lines or a JSON array of "
        'the LIMA release\'s {"conversations": [user, assistant, ...]} or OpenAI chat format '
        '{"messages": [{"role", "content"}, ...]}, one conversation per record, each ending '
        "with the model's answer. Label them on /inference/dialogues/ or through "
        "/api/dialogues/; importing the same file again adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument(
            "--model", help="The model of every conversation (over a record's 'model')."
        )
        parser.add_argument("--project", default="default")

    def handle(self, *args, path: str, model: str | None, project: str, **options):
        try:
            raw, file = load_file(path)
            with transaction.atomic():
                summary = dialogues_import(
                    project=import_project(name=project, file=file),
                    raw=raw,
                    file=file,
                    model_name=model,
                )
        except ImportFailed as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"{file}: {summary.created} conversations added with {summary.answers} answers to "
            f"label ({summary.skipped} already there)."
        )
        if summary.models_created:
            self.stdout.write(f"New models: {', '.join(summary.models_created)}.")
