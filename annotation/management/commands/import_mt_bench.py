from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.imports.arena import mt_bench_pairwise_import
from annotation.imports.mt_bench import is_single_answer, mt_bench_single_import
from annotation.imports.projects import import_project
from annotation.imports.records import ImportFailed, load_file, read_records


class Command(BaseCommand):
    help = (
        "Import MT-Bench judgments (FastChat llm_judge model_judgment/*.jsonl): pairwise ones "
        "(*_pair.jsonl) into a project's leaderboard, one group per judge; single-answer "
        "grades (*_single.jsonl) as the project's ratings on the MT-Bench scale, one judge "
        "annotator per judge. The kind is read from the file."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--project", default="default")
        parser.add_argument(
            "--group",
            help="Pairwise: one leaderboard group for every judge; single-answer: one judge "
            "name for every grade (default: the record's judge).",
        )

    def handle(self, *args, path: str, project: str, group: str | None, **options):
        try:
            raw, file = load_file(path)
            single = is_single_answer(read_records(raw, file)[0])
            with transaction.atomic():
                project_obj = import_project(name=project, file=file)
                if single:
                    summary = mt_bench_single_import(
                        project=project_obj, raw=raw, file=file, judge=group
                    )
                else:
                    pairwise = mt_bench_pairwise_import(
                        project=project_obj, raw=raw, file=file, group=group
                    )
        except ImportFailed as error:
            raise CommandError(str(error)) from error
        if single:
            self.stdout.write(
                f"{file}: {summary.created} single-answer grades added "
                f"({summary.skipped} already there, {summary.conflicts} of them with another "
                f"score, which is kept) from {', '.join(summary.annotators) or 'no judge'}."
            )
            dropped = summary.dropped
            if summary.created:
                self.stdout.write(
                    f"Scores per model: manage.py ratings --project {project_obj.name!r}"
                )
        else:
            self.stdout.write(
                f"{file}: {pairwise.created} judgments added ({pairwise.skipped} already there); "
                f"{pairwise.inconsistent} whose two orders disagree count as ties."
            )
            dropped = pairwise.dropped
        for reason, count in sorted(dropped.items()):
            self.stdout.write(f"{file}: {count} records dropped: {reason}.")
