from django.core.management.base import BaseCommand, CommandError

from inference.dialogue.selectors import study_link
from inference.dialogue.services import DialogueRefused, study_create
from inference.management.commands._lookup import models_named, project_named


class Command(BaseCommand):
    help = (
        "Make a dialogue study (LIMA §6 with crowd workers): each worker who opens its link "
        "talks live to one of the models (never named to them) for --turns answers, labels "
        "each answer Fail / Pass / Excellent and gets a completion code. Prints the link."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", dest="models", action="append", required=True,
                            help="Repeatable: a model with a generation backend.")  # fmt: skip
        parser.add_argument("--name", required=True)
        parser.add_argument("--turns", type=int, default=5, help="Answers per dialogue.")
        parser.add_argument("--max-workers", type=int, help="At most this many workers.")
        parser.add_argument("--completion-url", default="")
        parser.add_argument("--project", default="default")

    def handle(self, *args, **options):
        project = project_named(options["project"])
        models = models_named(project, options["models"])
        try:
            study = study_create(
                project=project,
                models=models,
                name=options["name"],
                user=None,
                turns=options["turns"],
                completion_url=options["completion_url"],
                max_workers=options["max_workers"],
            )
        except DialogueRefused as problem:
            raise CommandError(str(problem)) from problem
        self.stdout.write(f"Dialogue study {study.pk}: {study.name}")
        self.stdout.write(f"Crowd link: {study_link(study)}")
