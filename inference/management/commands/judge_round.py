import time

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project, Round
from inference.judge import selectors, services, worker
from inference.judge.models import DEFAULT_API_KEY_ENV, DEFAULT_BASE_URL, Judge, JudgeRun
from inference.judge.prompts import JudgeInvalid
from inference.runs import QueueUnavailable

# How often --wait prints progress while another worker runs the judge.
POLL_SECONDS = 2.0


class Command(BaseCommand):
    help = (
        "Attach a model judge to a round and judge its items. Without --wait the run is queued "
        "for a Celery worker (queue 'api'); with --wait it runs here and shows progress. The "
        "judge is created with the given settings if the project has none of that name."
    )

    def add_arguments(self, parser):
        parser.add_argument("round", type=int, help="The round id.")
        parser.add_argument("--judge", required=True, help="The judge's name, e.g. gpt-4.")
        parser.add_argument("--model", help="Model name at the endpoint (new judge: gpt-4).")
        parser.add_argument("--base-url", help=f"New judge: {DEFAULT_BASE_URL}.")
        parser.add_argument(
            "--api-key-env",
            help=f"The variable holding the API key (new judge: {DEFAULT_API_KEY_ENV}).",
        )
        parser.add_argument(
            "--mode", choices=Judge.Mode.values, help="New judge: pairwise (default)."
        )
        parser.add_argument("--wait", action="store_true", help="Run here and show progress.")
        parser.add_argument("--project", help="The round's project (checked if given).")

    def handle(self, *args, **options):
        round_ = Round.objects.select_related("project").filter(pk=options["round"]).first()
        if round_ is None:
            raise CommandError(f"No round with id {options['round']}.")
        if options["project"] and round_.project.name != options["project"]:
            raise CommandError(f"Round {round_.pk} is not in project {options['project']!r}.")
        judge = self._judge(round_.project, options)
        if not options["wait"]:
            try:
                run, queued = services.judge_run_start(round_=round_, judge=judge)
            except (QueueUnavailable, JudgeInvalid) as refused:
                raise CommandError(str(refused)) from refused
            state = "queued" if queued else f"already running on {run.worker}"
            self.stdout.write(
                f"Judge {judge.name!r} {state} on round {round_.pk} (run {run.pk}); "
                f"follow it at /inference/rounds/{round_.pk}/judges/"
            )
            return
        try:
            run = services.judge_run_attach(round_=round_, judge=judge)
        except JudgeInvalid as invalid:
            raise CommandError(str(invalid)) from invalid
        self._shown_at = 0.0
        run = worker.judge_run_execute(run_id=run.pk, progress=self._show)
        while run.status == JudgeRun.Status.RUNNING:
            # Another worker holds the run: follow its progress instead.
            self._show(run)
            time.sleep(POLL_SECONDS)
            run.refresh_from_db()
        self._show(run, final=True)
        if run.status == JudgeRun.Status.FAILED:
            raise CommandError(run.message)

    def _judge(self, project: Project, options) -> Judge:
        settings = {key: options[key] for key in ("model", "base_url", "api_key_env", "mode")}
        try:
            judge, created = services.judge_get_or_create(
                project=project, name=options["judge"], **settings
            )
        except JudgeInvalid as invalid:
            raise CommandError(str(invalid)) from invalid
        if created:
            self.stdout.write(f"Created judge {judge.name!r}: {judge.model} at {judge.base_url}")
        return judge

    def _show(self, run: JudgeRun, final: bool = False) -> None:
        if not final and time.monotonic() - self._shown_at < 1:
            return
        self._shown_at = time.monotonic()
        progress = selectors.run_progress(run)
        line = (
            f"\r  {progress.done}/{progress.needed} judged, {progress.failed} failed, "
            f"{progress.cached} from cache, {progress.tokens} tokens, ${progress.cost}"
        )
        self.stderr.write(line, ending="\n" if final else "")
        self.stderr.flush()
        if final:
            summary = f"Run {run.pk}: {run.status}"
            if progress.recorded:
                summary += f", {progress.recorded} verdicts recorded"
            if progress.consistency_percent is not None:
                summary += f", position consistency {progress.consistency_percent}%"
            self.stdout.write(summary)
