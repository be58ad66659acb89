from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from inference.training.data import TrainingDataInvalid
from inference.training.services import TrainingRejected, training_set_upload


class Command(BaseCommand):
    help = (
        "Import a training set from JSON Lines: the LIMA release format "
        '{"conversations": [user, assistant, ...], "source": ...} or {"prompt", "response"}. '
        "Every bad line is reported by number and nothing is imported if any is bad."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--name", help="Default: the file name without its extension.")
        parser.add_argument("--project", default="default")
        parser.add_argument(
            "--tokenizer",
            default="",
            help="A tokenizer folder or hub id for exact token lengths (default: an estimate).",
        )
        parser.add_argument("--max-length", type=int, default=2048)

    def handle(self, *args, **options):
        path = Path(options["file"])
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"No project named {options['project']!r}.")
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error}") from None
        try:
            training_set = training_set_upload(
                project=project,
                name=options["name"] or path.stem,
                raw=raw,
                file_name=path.name,
                tokenizer=options["tokenizer"],
                max_length=options["max_length"],
            )
        except (TrainingDataInvalid, TrainingRejected) as problem:
            raise CommandError(str(problem)) from None
        stats = training_set.stats
        self.stdout.write(
            f"Training set {training_set.pk}: {training_set.name} in {project.name}, "
            f"{stats['examples']} examples ({stats['multi_turn']} multi-turn, "
            f"{stats['turns']} turns)"
        )
        self.stdout.write(
            f"Tokens ({stats['tokenizer']}): min {stats['min_tokens']}, median "
            f"{stats['median_tokens']:g}, mean {stats['mean_tokens']:g}, 95th percentile "
            f"{stats['p95_tokens']}, max {stats['max_tokens']}; total {stats['total_tokens']}"
        )
        self.stdout.write(
            f"Over {stats['max_length']} tokens (trimmed): {stats['trimmed']}; "
            f"left without an answer token: {stats['trimmed_to_nothing']}"
        )
