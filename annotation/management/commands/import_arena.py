from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.imports.arena import arena_import
from annotation.imports.projects import import_project
from annotation.imports.records import ImportFailed, load_file


class Command(BaseCommand):
    help = (
        "Import Chatbot Arena battles (FastChat's clean_battle JSON or JSON Lines: model_a, "
        "model_b, winner) into a project's leaderboard."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--project", default="default")
        parser.add_argument("--group", default="arena", help="The leaderboard group they form.")

    def handle(self, *args, path: str, project: str, group: str, **options):
        try:
            raw, file = load_file(path)
            with transaction.atomic():
                project_obj = import_project(name=project, file=file)
                summary = arena_import(project=project_obj, raw=raw, file=file, group=group)
        except ImportFailed as error:
            raise CommandError(str(error)) from error
        winners = ", ".join(f"{w}: {n}" for w, n in sorted(summary.winners.items()))
        self.stdout.write(
            f"{file}: {summary.created} battles added ({summary.skipped} already there)"
            + (f"; {winners}" if winners else "")
            + "."
        )
        if summary.models_created:
            self.stdout.write(f"New models: {', '.join(summary.models_created)}.")
