"""An ablation experiment end to end on CPU: two training sets, a candidate trained on each,
several answers per dev prompt, every answer scored by the judge, the figure and the CSV."""

import csv
import io
import statistics
from collections import Counter

import pytest

from annotation.models import Rating, Response
from inference.experiments.figures import experiment_figure
from inference.experiments.models import Experiment
from inference.experiments.selectors import experiment_answers, experiment_results
from inference.experiments.services import (
    ExperimentRejected,
    experiment_cancel,
    experiment_create,
    experiment_resume,
)
from inference.experiments.worker import experiment_execute
from inference.judge.services import judge_create
from inference.models import TrainingRun
from tests.support.judging import KEY_ENV
from tests.support.openai_server import Reply
from tests.support.training import FAST

pytestmark = pytest.mark.django_db

SAMPLING = {"max_tokens": 4}


def score_of(prompt: str) -> int:
    """The scripted judge's score: from the answer's text, so that the same answer always gets
    the same score and the two candidates differ."""
    answer = prompt.split("Answer:", 1)[1].split("Rate how helpful", 1)[0]
    return 1 + sum(map(ord, answer)) % 6


def create(lab, base_model, **settings) -> Experiment:
    defaults = {
        "project": lab["project"],
        "name": "quantity",
        "base_model": str(base_model),
        "dev_set": lab["dev_set"],
        "judge": lab["judge"],
        "training_sets": [lab["small"], lab["large"]],
        "axis": Experiment.Axis.SIZE,
        "samples_per_prompt": 2,
        "seed": 11,
        "recipe": FAST,
        "sampling": SAMPLING,
        "enqueue_task": False,
    }
    return experiment_create(**{**defaults, **settings})


def test_it_trains_a_candidate_per_set_and_scores_every_answer(lab, base_model, judge_server):
    judge_server.responder = lambda request: Reply(f"Score: {score_of(request.prompt)}")
    experiment = create(lab, base_model)

    experiment = experiment_execute(experiment_id=experiment.pk)

    assert experiment.status == Experiment.Status.DONE, experiment.message
    assert experiment.message == "2 candidates trained; 8 answers scored."
    runs = list(TrainingRun.objects.filter(arm__experiment=experiment).order_by("arm__position"))
    assert [(run.name, run.status, run.plan["data"]["examples"]) for run in runs] == [
        ("quantity: 2 examples", "done", 2),
        ("quantity: 4 examples", "done", 4),
    ]
    answers = list(experiment_answers(experiment).select_related("model"))
    # 2 candidates x 2 dev prompts x 2 samples, each sample with its own seed.
    assert Counter(a.model.name for a in answers) == {r.name: 4 for r in runs}
    assert len({(a.model_id, a.prompt_id, a.generation["seed"]) for a in answers}) == 8
    assert {a.generation["sampling"]["max_tokens"] for a in answers} == {4}
    ratings = Rating.objects.filter(annotator=lab["judge"].annotator, response__in=answers)
    assert ratings.count() == 8

    results = experiment_results(experiment, resamples=200)
    assert [(r.label, r.examples, r.answers, r.needed, r.scored) for r in results] == [
        ("2 examples", 2, 4, 4, 4),
        ("4 examples", 4, 4, 4, 4),
    ]
    # Each answer's rating is the score the judge gave when it was sent that answer.
    given = {
        request.prompt.split("Answer: ", 1)[1].split("\n\nRate how helpful", 1)[0]: score_of(
            request.prompt
        )
        for request in judge_server.requests
        if "Question number" in request.prompt
    }
    stored = dict(ratings.values_list("response_id", "score"))
    for result in results:
        mine = [a for a in answers if a.model.name == result.model]
        assert [stored[a.pk] for a in mine] == [given[a.text] for a in mine]
        expected = statistics.fmean(given[a.text] for a in mine)
        assert result.mean == pytest.approx(expected)
        assert result.ci95 is not None and result.ci95[0] <= result.mean <= result.ci95[1]
    figure = experiment_figure(experiment, results)
    (axes,) = figure.axes
    assert axes.get_xscale() == "log"
    assert [line.get_xdata().tolist() for line in axes.lines[:1]] == [[2, 4]]


def test_a_second_run_makes_no_call_and_no_answer_again(lab, base_model, judge_server):
    judge_server.responder = lambda request: Reply("Score: 4")
    experiment = create(lab, base_model, training_sets=[lab["small"]], samples_per_prompt=1)
    experiment_execute(experiment_id=experiment.pk)
    calls, answers = len(judge_server.requests), Response.objects.count()
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.QUEUED)

    again = experiment_execute(experiment_id=experiment.pk)

    assert again.status == Experiment.Status.DONE, again.message
    assert (len(judge_server.requests), Response.objects.count()) == (calls, answers)


def test_a_cancelled_experiment_stops_and_resumes_where_it_stopped(
    lab, base_model, judge_server, monkeypatch
):
    judge_server.responder = lambda request: Reply("Score: 5")
    experiment = create(lab, base_model, samples_per_prompt=1)
    from inference.experiments import worker

    trained = worker._trained

    def cancel_after_the_first(experiment_, arm):
        run = trained(experiment_, arm)
        if arm.position == 0:
            experiment_cancel(experiment=experiment_)
        return run

    monkeypatch.setattr(worker, "_trained", cancel_after_the_first)
    stopped = experiment_execute(experiment_id=experiment.pk)
    assert stopped.status == Experiment.Status.CANCELLED
    assert TrainingRun.objects.filter(arm__experiment=experiment).count() == 1
    monkeypatch.setattr(worker, "_trained", trained)

    resumed = experiment_resume(experiment=stopped, enqueue_task=False)
    assert resumed.status == Experiment.Status.QUEUED
    done = experiment_execute(experiment_id=experiment.pk)
    assert done.status == Experiment.Status.DONE, done.message
    assert [r.scored for r in experiment_results(done, resamples=50)] == [2, 2]
    with pytest.raises(ExperimentRejected, match="is done"):
        experiment_resume(experiment=done)


def test_bad_settings_are_refused_all_at_once_and_nothing_is_kept(lab, base_model, judge_server):
    pairwise = judge_create(
        project=lab["project"],
        name="pairwise",
        base_url=judge_server.base_url,
        api_key_env=KEY_ENV,
    )
    with pytest.raises(ExperimentRejected) as refused:
        create(
            lab,
            base_model,
            name=" ",
            judge=pairwise,
            training_sets=[lab["small"], lab["small"]],
            samples_per_prompt=0,
            recipe={"epochs": -1},
            sampling={"temprature": 1},
        )
    message = str(refused.value)
    for expected in (
        "Give the experiment a name.",
        "A training set is given twice.",
        "helpfulness 1-6",
        "from 1 to 20",
        "recipe:",
        "sampling: Unknown sampling setting 'temprature'",
    ):
        assert expected in message
    assert not Experiment.objects.exists()


def test_the_results_export_as_csv_rows(lab, base_model, judge_server):
    from inference.experiments.selectors import CSV_COLUMNS, results_csv

    judge_server.responder = lambda request: Reply("Score: 3")
    experiment = create(lab, base_model, training_sets=[lab["small"]], samples_per_prompt=1)
    experiment_execute(experiment_id=experiment.pk)
    rows = list(csv.reader(io.StringIO(results_csv(experiment_results(experiment)))))
    assert rows[0] == CSV_COLUMNS
    assert rows[1][:9] == [
        "2 examples",
        "2",
        "2 examples",
        "done",
        "quantity: 2 examples",
        "2",
        "2",
        "2",
        "3.0",
    ]
