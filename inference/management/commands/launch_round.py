import json
import time

from django.core.management.base import BaseCommand, CommandError

from annotation.links import crowd_link
from annotation.models import Round
from inference.generation.models import GenerationRun
from inference.generation.selectors import generation_progress
from inference.generation.services import GenerationInvalid, generation_launch
from inference.runs import QueueUnavailable

POLL_SECONDS = 1.0
BAR_WIDTH = 30


def progress_bar(done: int, needed: int, width: int = BAR_WIDTH) -> str:
    filled = round(width * done / needed) if needed else width
    return "[" + "#" * filled + "-" * (width - filled) + "]"


class Command(BaseCommand):
    help = (
        "Generate every missing response of a round's models on the Celery workers of their "
        "backends (gpu, api, default queues); items are created as pairs complete. A failed or "
        "cancelled round is resumed: only what is missing is generated."
    )

    def add_arguments(self, parser):
        parser.add_argument("round", help="The round id, or its name with --project.")
        parser.add_argument("--project", default="default")
        parser.add_argument(
            "--sampling",
            type=json.loads,
            default=None,
            help="Overrides of the paper's sampling, as JSON: '{\"temperature\": 0.5}'.",
        )
        parser.add_argument("--seed", type=int, help="Default: the round's seed.")
        parser.add_argument(
            "--wait", action="store_true", help="Follow the workers with a progress bar."
        )

    def handle(self, *args, **options):
        round_ = self._round(options["round"], options["project"])
        try:
            run = generation_launch(
                round_=round_, sampling=options["sampling"], seed=options["seed"]
            )
        except (GenerationInvalid, QueueUnavailable) as invalid:
            raise CommandError(str(invalid)) from invalid
        queues = sorted(set(run.tasks.values_list("queue", flat=True)))
        self.stdout.write(
            f"Generation {run.pk} for round {round_.pk} ({run.status}); queues: "
            f"{', '.join(queues) or 'none needed'}"
        )
        if options["wait"]:
            run = self._follow(round_, run)
            self.stdout.write(f"Round {round_.pk}: {round_.items.count()} items")
        self.stdout.write(f"Crowd link: {crowd_link(round_)}")
        if run.status == GenerationRun.Status.FAILED:
            messages = [t.message for t in run.tasks.exclude(message="")]
            raise CommandError("Generation failed: " + " ".join(messages))

    def _round(self, given: str, project: str) -> Round:
        rounds = Round.objects.select_related("prompt_set", "candidate")
        round_ = (
            rounds.filter(pk=int(given)).first()
            if given.isdigit()
            else rounds.filter(project__name=project, name=given).first()
        )
        if round_ is None:
            raise CommandError(f"No round {given!r} (an id, or a name in project {project!r}).")
        return round_

    def _follow(self, round_: Round, run: GenerationRun) -> GenerationRun:
        shown = None
        interactive = self.stdout.isatty()
        while True:
            run.refresh_from_db()
            rows = generation_progress(round_)
            done, needed = sum(r.done for r in rows), sum(r.needed for r in rows)
            parts = [
                f"{r.model} {r.done}/{r.needed}" + (f" ({r.failed} failed)" if r.failed else "")
                for r in rows
            ]
            line = f"{progress_bar(done, needed)} {done}/{needed}  " + "  ".join(parts)
            if line != shown:
                self.stdout.write(
                    ("\r" if interactive else "") + line, ending="" if interactive else "\n"
                )
                self.stdout.flush()
                shown = line
            if not run.is_active:
                break
            time.sleep(POLL_SECONDS)
        if interactive:
            self.stdout.write("")
        for row in rows:
            rate = f"{row.responses_per_second:.2f} responses/s" if row.responses_per_second else ""
            tokens = f", {row.tokens_per_second:.0f} tokens/s" if row.tokens_per_second else ""
            self.stdout.write(f"  {row.model}: {row.status or 'imported'} {rate}{tokens}")
            for prompt_id, error in row.errors:
                self.stdout.write(f"    prompt {prompt_id}: {error}")
        return run
