"""Executing an experiment: for each training set in turn, train its candidate (the training
run, on this worker), have it answer every dev prompt `samples_per_prompt` times, and have the
judge score every answer for helpfulness.

Each step keeps what it made (the run's checkpoints, the answers as responses of the
registered model, the scores as the judge's ratings), so a resumed or re-delivered experiment
goes on where it stopped and a cancelled one stops after the step it is in.
"""

import logging
from dataclasses import asdict

from django.utils import timezone

from annotation.models import Rating, Response
from annotation.services.ratings import RatingGiven, ratings_record
from inference.backends.base import (
    BackendConfigError,
    SamplingSettings,
    backends_release,
    prompt_seed,
)
from inference.clients.openai_compat import MissingApiKey
from inference.experiments.models import Experiment, ExperimentArm
from inference.experiments.selectors import experiment_answers
from inference.runs import Heartbeat, Lease, lease_claim, queued_marker, stale_after
from inference.training import selection
from inference.training.models import TrainingRun
from inference.training.recipe import Recipe, RecipeInvalid
from inference.training.services import (
    TrainingRejected,
    training_run_launch,
    training_run_resume,
)
from inference.training.trainer import TrainingInvalid
from inference.training.worker import (
    TrainingBusy,
    dev_prompts,
    helpfulness_judge,
    training_run_execute,
)

logger = logging.getLogger(__name__)
Status = Experiment.Status
EXPECTED = (
    TrainingRejected,
    TrainingInvalid,
    RecipeInvalid,
    BackendConfigError,
    MissingApiKey,
)


class ExperimentBusy(Exception):
    """A candidate's training run is held by another live worker: try again later."""

    def __init__(self, message: str, retry_in: float) -> None:
        super().__init__(message)
        self.retry_in = retry_in


class ArmStopped(Exception):
    """A candidate's training ended without a model; the message says why."""


def experiment_execute(*, experiment_id: int, task_id: str | None = None) -> Experiment:
    """Run the experiment's remaining steps; safe to run twice (see the module's docstring)."""
    lease = lease_claim(
        Experiment,
        experiment_id,
        claimable=(Status.QUEUED,),
        live=(Status.RUNNING,),
        status=Status.RUNNING,
        task_id=task_id,
        message="",
        finished_at=None,
    )
    if lease is None:
        return Experiment.objects.get(pk=experiment_id)
    Experiment.objects.filter(pk=experiment_id, started_at__isnull=True).update(
        started_at=timezone.now()
    )
    with Heartbeat(lease):
        try:
            summary = _execute(experiment_id, lease)
        except TrainingBusy as busy:
            # Back in line for the retry of this task, which takes it once the run is free.
            lease.update(status=Status.QUEUED, worker=queued_marker(task_id or ""))
            raise ExperimentBusy(str(busy), retry_in=stale_after().total_seconds()) from None
        except (ArmStopped, *EXPECTED) as problem:
            lease.finish(Status.FAILED, str(problem))
        except Exception as error:
            logger.exception("experiment %s stopped on an unexpected error", experiment_id)
            lease.finish(Status.FAILED, f"Stopped on an unexpected error: {error}")
        else:
            if summary is not None:
                lease.finish(Status.DONE, summary)
    return Experiment.objects.get(pk=experiment_id)


def _execute(experiment_id: int, lease: Lease) -> str | None:
    """Every arm's steps; the summary, or None when the experiment was cancelled."""
    experiment = Experiment.objects.select_related("project", "dev_set", "judge").get(
        pk=experiment_id
    )
    recipe = Recipe.from_overrides(experiment.recipe)
    sampling = SamplingSettings.from_overrides(experiment.sampling)
    arms = list(experiment.arms.select_related("training_set", "training_run"))
    problems: list[str] = []
    for number, arm in enumerate(arms, start=1):
        step = {"arm": arm.label, "arms_done": number - 1, "arms": len(arms)}
        if not lease.update(progress={**step, "step": "training"}) or not lease.held():
            return None
        run = _trained(experiment, arm)
        if run is None:
            return None
        lease.update(progress={**step, "step": "answering"})
        problems += _answers_ensure(experiment, arm, run, recipe, sampling)
        if not lease.held():
            return None
        lease.update(progress={**step, "step": "scoring"})
        problems += _scores_ensure(experiment, run)
    lease.update(progress={"arms_done": len(arms), "arms": len(arms), "step": "done"})
    if not lease.held():
        return None
    if problems:
        raise ArmStopped(
            f"{len(problems)} answer{'s' if len(problems) != 1 else ''} could not be made or "
            f"scored (resume to try them again): {'; '.join(problems[:3])}"
        )
    scored = Rating.objects.filter(response__in=experiment_answers(experiment)).count()
    return f"{len(arms)} candidates trained; {scored} answers scored."


def _trained(experiment: Experiment, arm: ExperimentArm) -> TrainingRun | None:
    """The arm's run, launched the first time and trained here until it registered its model;
    None when it was cancelled."""
    run = arm.training_run
    if run is None:
        run = training_run_launch(
            project=experiment.project,
            name=experiment.arm_run_name(arm.label),
            training_set=arm.training_set,
            base_model=experiment.base_model,
            dev_set=experiment.dev_set,
            judge=experiment.judge,
            recipe=experiment.recipe,
            user=experiment.created_by,
            enqueue=False,
        )
        ExperimentArm.objects.filter(pk=arm.pk).update(training_run=run)
    if run.status in (TrainingRun.Status.FAILED, TrainingRun.Status.CANCELLED):
        if Experiment.objects.filter(pk=experiment.pk, status=Status.CANCELLED).exists():
            return None
        run = training_run_resume(run=run, enqueue=False)
    if run.status != TrainingRun.Status.DONE:
        run = training_run_execute(run_id=run.pk)
    if run.status == TrainingRun.Status.CANCELLED:
        return None
    if run.status != TrainingRun.Status.DONE or run.registered_model_id is None:
        raise ArmStopped(f"Training the {arm.label!r} candidate stopped: {run.message}")
    return run


def _answers_ensure(
    experiment: Experiment,
    arm: ExperimentArm,
    run: TrainingRun,
    recipe: Recipe,
    sampling: SamplingSettings,
) -> list[str]:
    """Each dev prompt answered `samples_per_prompt` times by the arm's candidate, each time with
    its own seed; answers made before are kept. Returns what failed."""
    model = run.registered_model
    assert model is not None  # Checked by _trained.
    prompts = dev_prompts(experiment.dev_set)
    backend = selection.selection_backend(recipe.selection_backend)
    made = set(
        experiment_answers(experiment).filter(model=model).values_list("prompt_id", "settings_key")
    )
    problems = []
    for sample in range(experiment.samples_per_prompt):
        key = experiment.sample_key(sample)
        missing = [prompt for prompt in prompts if (prompt.key, key) not in made]
        if not missing:
            continue
        seed = experiment.seed + sample
        answers = selection.answer_dev_set(
            checkpoint=run.chosen_checkpoint,
            prompts=missing,
            backend=backend,
            end_of_turn=recipe.end_of_turn,
            sampling={**asdict(sampling), "stop": list(sampling.stop), "seed": None},
            seed=seed,
            serving=recipe.selection_serving,
        )
        new = []
        for prompt in missing:
            answer = answers.get(prompt.external_id)
            if answer is None or answer.error:
                problems.append(
                    f"{arm.label}, prompt {prompt.external_id}, sample {sample + 1}: "
                    f"{answer.error if answer else 'no answer'}"
                )
                continue
            new.append(
                Response(
                    prompt_id=prompt.key,
                    model=model,
                    text=answer.answer,
                    settings_key=key,
                    generation={
                        "experiment": experiment.pk,
                        "sample": sample,
                        "backend": backend,
                        "sampling": {**asdict(sampling), "stop": list(sampling.stop)},
                        "seed": prompt_seed(seed, prompt.external_id),
                    },
                )
            )
        Response.objects.bulk_create(new, ignore_conflicts=True)
    # The candidate stays loaded across its samples; the next arm trains where it sits.
    backends_release()
    return problems


def _scores_ensure(experiment: Experiment, run: TrainingRun) -> list[str]:
    """The judge's helpfulness score of each of the candidate's answers not scored yet, stored as
    the judge's ratings; returns what failed."""
    annotator = experiment.judge.annotator
    unscored = list(
        experiment_answers(experiment)
        .filter(model_id=run.registered_model_id)
        .exclude(ratings__annotator=annotator, ratings__scale=Rating.Scale.HELPFULNESS_1_6)
        .select_related("prompt")
        .order_by("prompt__position", "settings_key")
    )
    if not unscored:
        return []
    judge = helpfulness_judge(experiment.judge)
    try:
        scores = judge.rate([(answer.prompt.text, answer.text) for answer in unscored])
    finally:
        judge.client.close()
    given, problems = [], []
    for answer, (score, error) in zip(unscored, scores, strict=True):
        if score is None:
            problems.append(f"scoring an answer to prompt {answer.prompt.external_id}: {error}")
            continue
        given.append(
            RatingGiven(
                model_id=answer.model_id,
                question=answer.prompt.external_id,
                scale=Rating.Scale.HELPFULNESS_1_6,
                score=float(score),
                response_id=answer.pk,
            )
        )
    ratings_record(annotator=annotator, ratings=given, source=f"experiment {experiment.pk}")
    return problems
