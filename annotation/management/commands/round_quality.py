import argparse

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.imports.gold import read_gold
from annotation.imports.records import ImportFailed, load_file
from annotation.models import Round
from annotation.services.quality import (
    QualityInvalid,
    items_mark_gold,
    round_add_attention_checks,
    round_apply_quality_rules,
    round_set_quality,
)


def _share(text: str) -> float:
    value = float(text.rstrip("%"))
    return value / 100 if text.endswith("%") or value > 1 else value


OPTIONS = {
    "check_rate": "check_rate",
    "words_per_second": "words_per_second",
    "min_gold_accuracy": "exclude_gold_accuracy_below",
    "max_failed_checks": "exclude_failed_checks_at_least",
    "max_too_fast": "exclude_too_fast_share_above",
    "screening": "screening",
    "block_after_failed_checks": "block_after_failed_checks",
    "return_url": "return_url",
}


class Command(BaseCommand):
    help = (
        "Quality control of a round: mark gold items from a file, add attention checks, set "
        "the share of check items and the exclusion rules, and apply the rules."
    )

    def add_arguments(self, parser):
        parser.add_argument("round_id", type=int)
        parser.add_argument(
            "--gold", help='JSONL of {"prompt_id", "answer": candidate|baseline|tie, "baseline"?}'
        )
        parser.add_argument("--attention-checks", type=int, default=0, help="How many to add.")
        parser.add_argument(
            "--check-rate", type=float, help="Share of each worker's items that are checks."
        )
        parser.add_argument("--words-per-second", type=float, help="Reading speed (default 10).")
        parser.add_argument(
            "--min-gold-accuracy", type=_share, help="Exclude below this (0.7 or 70%%)."
        )
        parser.add_argument("--max-failed-checks", type=int, help="Exclude at this many failed.")
        parser.add_argument(
            "--max-too-fast", type=_share, help="Exclude above this share of too-fast answers."
        )
        parser.add_argument(
            "--screening",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="A comprehension check (two attempts) before the first item.",
        )
        parser.add_argument(
            "--block-after-failed-checks", type=int, help="Stop a worker's items at this many."
        )
        parser.add_argument("--return-url", help="Where screened-out or stopped workers go.")
        parser.add_argument("--apply-rules", action="store_true", help="Exclude workers now.")

    def handle(self, *args, round_id: int, **options):
        round_ = Round.objects.filter(pk=round_id).first()
        if round_ is None:
            raise CommandError(f"No round {round_id}.")
        try:
            with transaction.atomic():  # All that is asked, or nothing.
                self._apply(round_, options)
        except (ImportFailed, QualityInvalid) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"Round {round_.pk}: check rate {round_.check_rate:g}, reading speed "
            f"{round_.words_per_second:g} words/s."
        )

    def _apply(self, round_: Round, options: dict) -> None:
        if options["gold"]:
            raw, file = load_file(options["gold"])
            marked = items_mark_gold(round_=round_, answers=read_gold(raw, file), source=file)
            self.stdout.write(f"{marked} gold items marked.")
        if options["attention_checks"]:
            added = round_add_attention_checks(round_=round_, count=options["attention_checks"])
            self.stdout.write(f"{added} attention checks added.")
        changes = {
            setting: options[option]
            for option, setting in OPTIONS.items()
            if options[option] is not None
        }
        if changes:
            round_set_quality(round_=round_, **changes)
        if options["apply_rules"]:
            for session in round_apply_quality_rules(round_=round_):
                self.stdout.write(f"Excluded {session.annotator.name}: {session.excluded_reason}")
