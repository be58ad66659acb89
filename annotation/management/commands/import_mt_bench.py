from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.imports.arena import mt_bench_pairwise_import
from annotation.imports.projects import import_project
from annotation.imports.records import ImportFailed, load_file


class Command(BaseCommand):
    help = (
        "Import MT-Bench pairwise judgments (FastChat llm_judge model_judgment/*_pair.jsonl) "
        "into a project's leaderboard, one group per judge."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--project", default="default")
        parser.add_argument("--group", help="One group for every judge (default: its name).")

    def handle(self, *args, path: str, project: str, group: str | None, **options):
        try:
            raw, file = load_file(path)
            with transaction.atomic():
                project_obj = import_project(name=project, file=file)
                summary = mt_bench_pairwise_import(
                    project=project_obj, raw=raw, file=file, group=group
                )
        except ImportFailed as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"{file}: {summary.created} judgments added ({summary.skipped} already there); "
            f"{summary.inconsistent} whose two orders disagree count as ties."
        )
        for reason, count in sorted(summary.dropped.items()):
            self.stdout.write(f"{file}: {count} records dropped: {reason}.")
