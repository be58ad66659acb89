import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project, PromptSet
from annotation.reports.charts import figure_bytes
from inference.experiments.figures import experiment_figure
from inference.experiments.models import Experiment
from inference.experiments.selectors import ArmResult, experiment_results, results_csv
from inference.experiments.services import (
    ExperimentRejected,
    experiment_cancel,
    experiment_create,
    experiment_resume,
)
from inference.experiments.worker import experiment_execute
from inference.judge.models import Judge
from inference.management.commands.train import setting
from inference.runs import QueueUnavailable
from inference.training.models import TrainingSet


def _json_object(text: str) -> dict:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


class Command(BaseCommand):
    help = (
        "Ablation experiments (LIMA §5): train a candidate on each training set, have each "
        "answer the dev prompts several times, score every answer with a helpfulness judge, "
        "and compare the means with 95 %% intervals. `create` queues it on the `train` queue "
        "(--here: runs it in this process); `show` prints the table; `export` writes the "
        "figure and the CSV; `cancel` and `resume` act on the whole experiment."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["create", "show", "export", "cancel", "resume"])
        parser.add_argument("name", help="The experiment's name.")
        parser.add_argument("--project", default="default")
        parser.add_argument("--base-model", help="create: a checkpoint folder or a hub id.")
        parser.add_argument(
            "--training-set",
            dest="training_sets",
            action="append",
            default=[],
            metavar="NAME[=LABEL]",
            help="create: a training set (repeatable, in the order shown), with a label.",
        )
        parser.add_argument("--dev-set", help="create: the prompt set every candidate answers.")
        parser.add_argument("--judge", help="create: a judge in mode helpfulness_1_6.")
        parser.add_argument(
            "--axis",
            choices=Experiment.Axis.values,
            default=Experiment.Axis.SETS,
            help="create: bars per training set (sets) or examples on a log scale (size).",
        )
        parser.add_argument("--samples", type=int, default=5, help="create: answers per prompt.")
        parser.add_argument("--seed", type=int)
        parser.add_argument(
            "--set",
            dest="recipe",
            type=setting,
            action="append",
            metavar="K=V",
            help="create: a training recipe override (repeatable).",
        )
        parser.add_argument(
            "--sampling",
            type=_json_object,
            default={},
            help='create: decoding overrides as JSON, e.g. {"max_tokens": 512}.',
        )
        parser.add_argument("--out", type=Path, help="export: the folder to write to.")
        parser.add_argument("--json", action="store_true", help="show: as JSON.")
        parser.add_argument(
            "--here", action="store_true", help="create, resume: run it in this process."
        )

    def handle(self, *args, **options):
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"No project named {options['project']!r}.")
        if options["action"] == "create":
            experiment = self._create(project, options)
        else:
            found = Experiment.objects.filter(project=project, name=options["name"]).first()
            if found is None:
                raise CommandError(
                    f"No experiment named {options['name']!r} in project {project.name!r}."
                )
            experiment = found
        action = options["action"]
        if action == "cancel":
            experiment = experiment_cancel(experiment=experiment)
            self.stdout.write(f"Experiment {experiment.name}: {experiment.status}.")
            return
        if action == "resume":
            try:
                experiment = experiment_resume(
                    experiment=experiment, enqueue_task=not options["here"]
                )
            except (ExperimentRejected, QueueUnavailable) as problem:
                raise CommandError(str(problem)) from problem
        if action in ("create", "resume"):
            if options["here"]:
                experiment = experiment_execute(experiment_id=experiment.pk)
            else:
                self.stdout.write(
                    f"Experiment {experiment.pk} ({experiment.name}) is queued on the `train` "
                    "queue."
                )
                return
        results = experiment_results(experiment)
        if action == "export":
            self._export(experiment, results, options["out"])
            return
        if options["json"]:
            payload = {
                "name": experiment.name,
                "status": experiment.status,
                "message": experiment.message,
                "results": [result.as_json() for result in results],
            }
            self.stdout.write(json.dumps(payload, indent=2, default=str))
            return
        self._table(experiment, results)

    def _create(self, project: Project, options: dict) -> Experiment:
        missing = [
            flag
            for flag, key in (("--base-model", "base_model"), ("--dev-set", "dev_set"),
                              ("--judge", "judge"), ("--training-set", "training_sets"))
            if not options[key]
        ]  # fmt: skip
        if missing:
            raise CommandError(f"create needs {', '.join(missing)}.")
        names, labels = [], []
        for given in options["training_sets"]:
            name, _, label = given.partition("=")
            names.append(name)
            labels.append(label or name)
        training_sets = []
        for name in names:
            found = TrainingSet.objects.filter(project=project, name=name).first()
            if found is None:
                raise CommandError(f"No training set named {name!r} in project {project.name!r}.")
            training_sets.append(found)
        dev_set = PromptSet.objects.filter(project=project, name=options["dev_set"]).first()
        judge = Judge.objects.filter(project=project, name=options["judge"]).first()
        if dev_set is None:
            raise CommandError(f"No prompt set named {options['dev_set']!r}.")
        if judge is None:
            raise CommandError(f"No judge named {options['judge']!r}.")
        try:
            return experiment_create(
                project=project,
                name=options["name"],
                base_model=options["base_model"],
                dev_set=dev_set,
                judge=judge,
                training_sets=training_sets,
                labels=labels,
                axis=options["axis"],
                samples_per_prompt=options["samples"],
                seed=options["seed"],
                recipe=dict(options["recipe"] or []),
                sampling=options["sampling"],
                enqueue_task=not options["here"],
            )
        except (ExperimentRejected, QueueUnavailable) as problem:
            raise CommandError(str(problem)) from problem

    def _table(self, experiment: Experiment, results: list[ArmResult]) -> None:
        self.stdout.write(f"Experiment {experiment.name}: {experiment.status}")
        if experiment.message:
            self.stdout.write(f"  {experiment.message}")
        self.stdout.write(
            f"{'training set':<24} {'examples':>8} {'answers':>9} {'mean':>6}  95 % interval"
        )
        for result in results:
            mean = f"{result.mean:.2f}" if result.mean is not None else "—"
            interval = f"[{result.ci95[0]:.2f}, {result.ci95[1]:.2f}]" if result.ci95 else "—"
            answers = f"{result.scored}/{result.needed}"
            self.stdout.write(
                f"{result.label:<24} {result.examples:>8} {answers:>9} {mean:>6}  {interval}"
            )

    def _export(self, experiment: Experiment, results: list[ArmResult], out: Path | None) -> None:
        if out is None:
            raise CommandError("export needs --out DIR.")
        out.mkdir(parents=True, exist_ok=True)
        figure = experiment_figure(experiment, results)
        written = [out / "results.csv", out / "figure.png", out / "figure.svg"]
        written[0].write_text(results_csv(results), encoding="utf-8")
        written[1].write_bytes(figure_bytes(figure, "png"))
        written[2].write_bytes(figure_bytes(figure, "svg"))
        for path in written:
            self.stdout.write(f"wrote {path}")
