import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from annotation.reports.exchange import arena_battles
from annotation.reports.frames import project_battles


class Command(BaseCommand):
    help = "Export a project's pairwise verdicts as FastChat clean_battle JSON."

    def add_arguments(self, parser):
        parser.add_argument("--project", default="default")
        parser.add_argument("--out", required=True, help="The JSON file to write.")
        parser.add_argument("--group", action="append", default=[], help="Only these groups.")

    def handle(self, *args, project: str, out: str, group: list[str], **options):
        project_obj = Project.objects.filter(name=project).first()
        if project_obj is None:
            raise CommandError(f"No project named {project!r}.")
        battles = project_battles(project_obj.pk)
        if group:
            battles = battles[battles["group"].isin(group)]
        records = arena_battles(battles)
        Path(out).write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n")
        self.stdout.write(f"{len(records)} battles written to {out}.")
