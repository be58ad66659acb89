import argparse

from django.core.management.base import BaseCommand, CommandError

from annotation.links import crowd_link
from annotation.models import ROUND_SCALES, LanguageModel, Project, PromptSet, Round
from annotation.services.rounds import RoundInvalid, round_create


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, found {value}")
    return number


class Command(BaseCommand):
    help = (
        "Create a round: the candidate against each baseline on every prompt of the set that "
        "has responses from both; with --scale, an absolute round that rates each answer of "
        "the candidate and the baselines alone. Prints the round id and the crowd link."
    )

    def add_arguments(self, parser):
        parser.add_argument("--set", dest="set_name", required=True, help="Prompt set name.")
        parser.add_argument("--candidate", required=True)
        parser.add_argument(
            "--baseline",
            dest="baselines",
            action="append",
            default=[],
            help="Repeatable; at least one for a pairwise round.",
        )
        parser.add_argument(
            "--scale",
            choices=[str(scale) for scale in ROUND_SCALES],
            default="",
            help="Make an absolute round: annotators rate each answer alone on this scale "
            "(LIMA's Fail / Pass / Excellent, helpfulness 1-6, or safety for a sensitive set).",
        )
        parser.add_argument("--annotators-per-item", type=_count, default=1)
        parser.add_argument("--shared-items", type=_count, default=50)
        parser.add_argument("--items-per-worker", type=_count, default=100)
        parser.add_argument(
            "--lease-seconds",
            type=_count,
            help="How long a crowd worker holds an item; default: the CROWD_LEASE_SECONDS setting.",
        )
        parser.add_argument(
            "--max-active-workers",
            type=_count,
            help="At most this many crowd workers at work at once; default: no cap.",
        )
        parser.add_argument("--name", default="")
        parser.add_argument("--seed", type=int)
        parser.add_argument(
            "--completion-url",
            default="",
            help="Where a worker who finished is sent (e.g. Prolific's completion URL); "
            "{code} in it is replaced by the worker's own completion code.",
        )
        parser.add_argument(
            "--text-format",
            choices=Round.TextFormat.values,
            default=Round.TextFormat.MARKDOWN,
            help="How annotators see prompts and answers (the judge reads the raw text).",
        )
        parser.add_argument("--project", default="default")

    def handle(self, *args, **options):
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"No project named {options['project']!r}.")
        prompt_set = PromptSet.objects.filter(project=project, name=options["set_name"]).first()
        if prompt_set is None:
            raise CommandError(
                f"No prompt set named {options['set_name']!r} in project {project.name!r}."
            )
        candidate = self._model(project, options["candidate"])
        baselines = [self._model(project, name) for name in dict.fromkeys(options["baselines"])]
        try:
            round_ = round_create(
                project=project,
                prompt_set=prompt_set,
                candidate=candidate,
                baselines=baselines,
                name=options["name"],
                annotators_per_item=options["annotators_per_item"],
                shared_items=options["shared_items"],
                items_per_worker=options["items_per_worker"],
                lease_seconds=options["lease_seconds"],
                seed=options["seed"],
                text_format=options["text_format"],
                completion_url=options["completion_url"],
                max_active_workers=options["max_active_workers"],
                kind=Round.Kind.ABSOLUTE if options["scale"] else Round.Kind.PAIRWISE,
                scale=options["scale"],
            )
        except RoundInvalid as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Round {round_.pk}: {round_.name} ({round_.items.count()} items)")
        self.stdout.write(f"Crowd link: {crowd_link(round_)}")

    def _model(self, project: Project, name: str) -> LanguageModel:
        model = LanguageModel.objects.filter(project=project, name=name).first()
        if model is None:
            raise CommandError(f"No model named {name!r} in project {project.name!r}.")
        return model
