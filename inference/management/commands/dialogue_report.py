import json

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from inference.dialogue.selectors import dialogue_report


class Command(BaseCommand):
    help = (
        "The dialogue study's figures (LIMA §6) for a project: per model, the dialogues, the "
        "answers labelled, the share of Fail / Pass / Excellent with the 95 % interval of pass "
        "or excellent (resampling dialogues), and how many answers failed. Dialogues are held "
        "and labelled on /inference/dialogues/ or through /api/dialogues/."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", default="default")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"No project named {options['project']!r}.")
        rows, _ = dialogue_report(project.pk)
        if options["json"]:
            self.stdout.write(json.dumps([row.__dict__ for row in rows], indent=2))
            return
        if not rows:
            self.stdout.write(f"No labelled dialogue in {project.name!r} yet.")
            return
        self.stdout.write(
            f"{'model':<28} {'dialogues':>9} {'answers':>7} {'fail':>6} {'pass':>6} "
            f"{'excel.':>6} {'fails':>7}  pass or excellent, 95 %"
        )
        for row in rows:
            shares = " ".join(f"{row.shares[label]:>5.1f}%" for label in row.shares)
            interval = f"[{row.ci95[0]:.1f}, {row.ci95[1]:.1f}]%" if row.ci95 else "—"
            self.stdout.write(
                f"{row.model:<28} {row.dialogues:>9} {row.answers:>7} {shares} "
                f"{row.fails:>3} of {row.answers:<3} {interval}"
            )
