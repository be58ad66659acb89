import json
import time
from typing import Any, TypeVar

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Manager, Model

from annotation.models import Project, PromptSet
from inference.judge.models import Judge
from inference.judge.prompts import JudgeInvalid
from inference.judge.services import judge_create
from inference.training.models import TrainingRun, TrainingSet
from inference.training.recipe import Recipe
from inference.training.selectors import run_progress
from inference.training.services import (
    TrainingRejected,
    training_run_cancel,
    training_run_launch,
    training_run_resume,
)
from inference.training.worker import training_run_execute, training_run_train_process

POLL_SECONDS = 2.0

M = TypeVar("M", bound=Model)


def setting(text: str) -> tuple[str, object]:
    """KEY=VALUE, the value read as JSON when it is JSON (numbers, true, objects)."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


class Command(BaseCommand):
    help = (
        "Fine-tune a base model with the LIMA recipe, select a checkpoint of epochs 5-10 with a "
        "helpfulness judge on a dev set, and register it as a model (vLLM, stop on <EOT>). "
        "By default the run is queued for a worker of the `train` queue; --here runs it in "
        "this process. Any recipe setting can be overridden with --set KEY=VALUE (e.g. --set "
        "epochs=15 --set batch_size=32 --set residual_dropout=0.3)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", help="The run's name, also the model it registers.")
        parser.add_argument("--project", default="default")
        parser.add_argument("--training-set", help="A training set's name (upload_training_set).")
        parser.add_argument("--base-model", help="A checkpoint folder or a hub id.")
        parser.add_argument("--dev-set", help="A prompt set's name: the dev prompts.")
        parser.add_argument("--judge", help="A judge's name, in mode helpfulness_1_6.")
        parser.add_argument(
            "--judge-model",
            help="Create the judge if there is none of that name: the model at the endpoint "
            "(the paper rated helpfulness with ChatGPT, e.g. gpt-3.5-turbo).",
        )
        parser.add_argument("--judge-base-url", help="New judge: an OpenAI-compatible base URL.")
        parser.add_argument(
            "--judge-api-key-env", help="New judge: the variable holding the key on the workers."
        )
        parser.add_argument(
            "--set",
            dest="recipe_overrides",
            type=setting,
            action="append",
            metavar="K=V",
        )
        parser.add_argument("--resume", type=int, metavar="RUN", help="Continue a stopped run.")
        parser.add_argument("--cancel", type=int, metavar="RUN", help="Stop a run.")
        parser.add_argument(
            "--process",
            type=int,
            metavar="RUN",
            help="Be one training process of the run (under accelerate launch; see "
            "docs/training.md).",
        )
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--here", action="store_true", help="Run it in this process.")
        where.add_argument("--wait", action="store_true", help="Follow the worker's progress.")
        parser.add_argument("--defaults", action="store_true", help="Print the recipe and exit.")

    def handle(self, *args, **options):
        if options["defaults"]:
            self.stdout.write(json.dumps(Recipe().as_dict(), indent=2))
            return
        if options["process"]:
            outcome = training_run_train_process(run_id=options["process"])
            self.stdout.write(f"step {outcome.step}/{outcome.max_steps}")
            return
        if options["cancel"]:
            run = training_run_cancel(run=self._run(options["cancel"]))
            self.stdout.write(f"Training run {run.pk}: {run.status}")
            return
        enqueue = not options["here"]
        try:
            if options["resume"]:
                run = training_run_resume(run=self._run(options["resume"]), enqueue=enqueue)
            else:
                run = self._launch(options, enqueue)
        except TrainingRejected as rejected:
            raise CommandError(str(rejected)) from None
        self.stdout.write(
            f"Training run {run.pk}: {run.name} ({run.status}), checkpoints in {run.output_dir}"
        )
        if options["here"]:
            run = training_run_execute(run_id=run.pk)
        elif options["wait"]:
            run = self._follow(run)
        else:
            return
        self._report(run)

    def _run(self, pk: int) -> TrainingRun:
        run = TrainingRun.objects.filter(pk=pk).first()
        if run is None:
            raise CommandError(f"No training run {pk}.")
        return run

    def _launch(self, options: dict[str, Any], enqueue: bool) -> TrainingRun:
        missing = [
            f"--{name.replace('_', '-')}"
            for name in ("name", "training_set", "base_model", "dev_set", "judge")
            if not options[name]
        ]
        if missing:
            raise CommandError(f"Give {', '.join(missing)} (or --resume RUN).")
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"No project named {options['project']!r}.")
        if options["judge_model"]:
            self._ensure_judge(project, options)
        training_set = _in_project(
            TrainingSet.objects, project, options["training_set"], "training set"
        )
        dev_set = _in_project(PromptSet.objects, project, options["dev_set"], "dev set")
        judge = _in_project(Judge.objects, project, options["judge"], "judge")
        return training_run_launch(
            project=project,
            name=options["name"],
            training_set=training_set,
            base_model=options["base_model"],
            dev_set=dev_set,
            judge=judge,
            recipe=dict(options["recipe_overrides"] or []),
            enqueue=enqueue,
        )

    def _ensure_judge(self, project: Project, options) -> None:
        if Judge.objects.filter(project=project, name=options["judge"]).exists():
            return
        settings = {"model": options["judge_model"], "mode": Judge.Mode.HELPFULNESS}
        if options["judge_base_url"]:
            settings["base_url"] = options["judge_base_url"]
        if options["judge_api_key_env"]:
            settings["api_key_env"] = options["judge_api_key_env"]
        try:
            judge = judge_create(project=project, name=options["judge"], **settings)
        except JudgeInvalid as invalid:
            raise CommandError(str(invalid)) from None
        self.stdout.write(f"Judge {judge.pk}: {judge.name} ({judge.model}, helpfulness 1-6)")

    def _follow(self, run: TrainingRun) -> TrainingRun:
        shown = None
        while True:
            run.refresh_from_db()
            line = run_progress(run).line()
            if line != shown:
                self.stdout.write(line)
                shown = line
            if not run.is_active:
                return run
            time.sleep(POLL_SECONDS)

    def _report(self, run: TrainingRun) -> None:
        self.stdout.write(run_progress(run).line())
        for score in run.scores.order_by("epoch"):
            mean = "—" if score.mean_score is None else f"{score.mean_score:.2f}"
            mark = "  <- chosen" if score.chosen else ""
            self.stdout.write(
                f"  epoch {score.epoch} (step {score.step}): helpfulness {mean} over "
                f"{score.scored} answers, {score.failed} failed{mark}"
            )
        if run.status == TrainingRun.Status.DONE:
            model = run.registered_model
            if model is None:  # Deleted since (the link is SET_NULL).
                self.stdout.write(
                    f"Chose {run.chosen_checkpoint}; the model registered from it was deleted."
                )
            else:
                self.stdout.write(
                    f"Registered model {model.pk}: {model.name} ({model.backend}) from "
                    f"{run.chosen_checkpoint}"
                )
        elif run.status == TrainingRun.Status.FAILED:
            raise CommandError(f"Training run {run.pk} failed: {run.message}")
        elif run.message:
            self.stdout.write(run.message)


def _in_project(manager: Manager[M], project: Project, name: str, label: str) -> M:
    found = manager.filter(project=project, name=name).first()
    if found is None:
        raise CommandError(f"No {label} named {name!r} in project {project.name!r}.")
    return found
