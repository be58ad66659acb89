from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.imports.ratings import ratings_import
from annotation.imports.records import ImportFailed, load_file
from annotation.models import Annotator, Rating, Round


class Command(BaseCommand):
    help = (
        "Import absolute labels of a round's answers given outside the platform (JSON array or "
        'JSON Lines of {"prompt_id", "model", "label" or "score", "annotator", "turn"}) as '
        "ratings beside the judge's: `manage.py ratings` then shows them and their agreement."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--round", type=int, required=True, help="The round whose answers.")
        parser.add_argument("--scale", choices=Rating.Scale.values, required=True)
        parser.add_argument(
            "--kind",
            choices=Annotator.Kind.values,
            default=Annotator.Kind.AUTHOR,
            help="Who gave them (default: author).",
        )
        parser.add_argument("--annotator", help="One annotator for every record.")

    def handle(self, *args, path: str, round: int, scale: str, kind: str, **options):
        round_ = Round.objects.filter(pk=round).first()
        if round_ is None:
            raise CommandError(f"No round {round}.")
        try:
            raw, file = load_file(path)
            with transaction.atomic():
                summary = ratings_import(
                    round_=round_,
                    raw=raw,
                    file=file,
                    scale=scale,
                    kind=kind,
                    annotator=options["annotator"],
                )
        except ImportFailed as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"{file}: {summary.created} ratings added ({summary.skipped} already there, "
            f"{summary.conflicts} of them with another value, which is kept) from "
            f"{', '.join(summary.annotators)}."
        )
