import json

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from inference.dialogue.selectors import comparison_report, dialogue_report


class Command(BaseCommand):
    help = (
        "The dialogue study's figures (LIMA §6) for a project: per model, the dialogues, the "
        "answers labelled, the share of Fail / Pass / Excellent with the 95 % interval of pass "
        "or excellent (resampling dialogues), how many answers failed, overall and by answer "
        "number; and the comparisons of two models' dialogues on the same opening messages. "
        "Dialogues are held, imported, labelled and compared on /inference/dialogues/ or "
        "through /api/dialogues/."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", default="default")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"No project named {options['project']!r}.")
        rows, _ = dialogue_report(project.pk)
        compared = comparison_report(project.pk)
        if options["json"]:
            report = {
                "models": [row.as_json() for row in rows],
                "comparisons": [row.as_json() for row in compared],
            }
            self.stdout.write(json.dumps(report, indent=2))
            return
        if not rows and not compared:
            self.stdout.write(f"No labelled or compared dialogue in {project.name!r} yet.")
            return
        if rows:
            self._labels(rows)
        if compared:
            self._comparisons(compared)

    def _labels(self, rows):
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
        self.stdout.write("\nFails by answer number (fails of labels):")
        for row in rows:
            cells = "  ".join(
                f"{turn}: {fails} of {answers}" for turn, (answers, fails) in row.by_turn.items()
            )
            self.stdout.write(f"{row.model:<28} {cells}")

    def _comparisons(self, compared):
        self.stdout.write("\nDialogues compared on the same opening messages:")
        for row in compared:
            outcome = row.outcome
            interval = f" [{outcome.ci95[0]:.1f}, {outcome.ci95[1]:.1f}]" if outcome.ci95 else ""
            self.stdout.write(
                f"{row.model} vs {row.other}: {row.pairs} pairs, better {outcome.wins}, "
                f"neither {outcome.ties}, worse {outcome.losses}; win rate "
                f"{outcome.win_rate:.1f}%{interval}"
            )
