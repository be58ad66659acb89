from django.core.management.base import BaseCommand, CommandError

from annotation.links import crowd_link
from inference.dialogue.services import (
    DialogueRefused,
    dialogue_pairs_round_create,
    dialogue_round_create,
)
from inference.management.commands._lookup import models_named, project_named


class Command(BaseCommand):
    help = (
        "Make an absolute round in which crowd workers label every answer of the models' "
        "finished dialogues Fail / Pass / Excellent, each shown after the conversation before "
        "it (a prompt set 'dialogue turns: NAME' holds them); their labels count in "
        "dialogue_report beside the authors'. With --pairs, a pairwise round over two models' "
        "dialogues on the same opening messages instead. Prints the round id and the crowd link."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", dest="models", action="append", required=True,
                            help="Repeatable: a model whose dialogues are labelled.")  # fmt: skip
        parser.add_argument("--name", required=True, help="The round's name.")
        parser.add_argument(
            "--pairs",
            action="store_true",
            help="With two --model: a pairwise round over their dialogues that open with the "
            "same message, each dialogue after its opening shown as an answer.",
        )
        parser.add_argument("--annotators-per-item", type=int, default=1)
        parser.add_argument("--shared-items", type=int, default=0)
        parser.add_argument("--completion-url", default="")
        parser.add_argument("--project", default="default")

    def handle(self, *args, **options):
        project = project_named(options["project"])
        models = models_named(project, options["models"])
        settings = {
            "project": project,
            "name": options["name"],
            "annotators_per_item": options["annotators_per_item"],
            "shared_items": options["shared_items"],
            "completion_url": options["completion_url"],
        }
        try:
            if options["pairs"]:
                if len(models) != 2:
                    raise CommandError("--pairs compares two models: give --model twice.")
                round_ = dialogue_pairs_round_create(
                    model_a=models[0], model_b=models[1], **settings
                )
            else:
                round_ = dialogue_round_create(models=models, **settings)
        except DialogueRefused as problem:
            raise CommandError(str(problem)) from problem
        shown = "pairs" if options["pairs"] else "answers"
        self.stdout.write(f"Round {round_.pk}: {round_.name} ({round_.items.count()} {shown})")
        self.stdout.write(f"Crowd link: {crowd_link(round_)}")
