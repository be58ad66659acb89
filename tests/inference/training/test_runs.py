"""A run end to end on CPU: checks, training, checkpoint selection by the judge, registration."""

import pytest

from annotation.models import LanguageModel
from inference.backends.base import GenerationRequest, SamplingSettings, backend_load, messages_for
from inference.judge.services import judge_create
from inference.models import CheckpointScore, TrainingRun
from inference.training import trainer, worker
from inference.training.services import (
    TrainingRejected,
    training_run_cancel,
    training_run_launch,
    training_run_resume,
)
from inference.training.worker import training_run_execute
from tests.factories import make_prompt_set
from tests.support.judging import KEY_ENV
from tests.support.openai_server import Reply
from tests.support.training import FAST

pytestmark = pytest.mark.django_db

Status = TrainingRun.Status


def launch(lab, base_model, name="lima-tiny", **recipe):
    return training_run_launch(
        project=lab["project"],
        name=name,
        training_set=lab["training_set"],
        base_model=str(base_model),
        dev_set=lab["dev_set"],
        judge=lab["judge"],
        recipe={**FAST, **recipe},
    )


def scores_by_checkpoint(*means):
    """A judge whose scores depend on which checkpoint is being rated (two prompts each)."""

    def respond(request):
        return Reply(f"Score: {means[(request.number - 1) // 2]}")

    return respond


def test_it_trains_selects_the_checkpoint_the_judge_prefers_and_registers_it(
    lab, base_model, judge_server
):
    judge_server.responder = scores_by_checkpoint(2, 5, 3)
    run = launch(lab, base_model, epochs=3, select_from_epoch=1, select_to_epoch=3)

    run = training_run_execute(run_id=run.pk)

    assert run.status == Status.DONE, run.message
    scores = list(CheckpointScore.objects.filter(run=run).order_by("epoch"))
    assert [(s.epoch, s.mean_score, s.scored, s.failed) for s in scores] == [
        (1, 2.0, 2, 0),
        (2, 5.0, 2, 0),
        (3, 3.0, 2, 0),
    ]
    assert [s.chosen for s in scores] == [False, True, False]
    assert run.chosen_checkpoint == scores[1].path
    assert run.message == "Chose epoch 2 (mean helpfulness 5.00)."
    # The judge rated each dev prompt's answer with the helpfulness template.
    assert len(judge_server.requests) == 6
    assert "Rate how helpful this answer is" in judge_server.requests[0].prompt
    assert "Question: Question number 0?" in judge_server.requests[0].prompt
    # The run's figures, as the page shows them.
    assert run.progress["step"] == run.progress["max_steps"] == 6
    assert run.progress["selection"] == {"done": 3, "total": 3}
    assert [h[0] for h in run.progress["history"]] == [1, 2, 3, 4, 5, 6]
    assert run.plan["training"]["recipe"]["learning_rate"] == 1e-5
    assert run.plan["data"]["examples"] == 4

    model = run.registered_model
    assert (model.name, model.backend) == ("lima-tiny", LanguageModel.Backend.VLLM)
    assert model.config == {"model": scores[1].path, "end_of_turn": "<EOT>"}


def test_the_registered_candidate_generates_through_the_transformers_backend(lab, base_model):
    run = training_run_execute(run_id=launch(lab, base_model).pk)
    model = run.registered_model

    backend = backend_load("transformers", model.config)
    request = GenerationRequest(key=1, messages=messages_for("the quick brown fox"), seed=1)
    [result] = backend.generate([request], SamplingSettings(max_tokens=5))

    assert result.ok, result.error
    eot = backend.tokenizer.convert_tokens_to_ids("<EOT>")
    assert eot in backend.stop_ids
    assert (
        backend.tokenizer.apply_chat_template(
            list(request.messages), tokenize=False, add_generation_prompt=True
        )
        == "<s>the quick brown fox<EOT>"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"base_model": "/nowhere/llama-65b"}, "does not exist on this worker"),
        ({"recipe": {"memory_limit_gb": 0.25}}, "Not enough memory"),
        ({"unset_key": True}, "Checkpoint selection needs the judge's key"),
    ],
)
def test_bad_input_fails_before_training_with_a_clear_message(
    lab, base_model, monkeypatch, change, message
):
    if change.get("unset_key"):
        monkeypatch.delenv(KEY_ENV)
    run = training_run_launch(
        project=lab["project"],
        name="bad",
        training_set=lab["training_set"],
        base_model=change.get("base_model", str(base_model)),
        dev_set=lab["dev_set"],
        judge=lab["judge"],
        recipe={**FAST, **change.get("recipe", {})},
    )

    run = training_run_execute(run_id=run.pk)

    assert run.status == Status.FAILED
    assert message in run.message
    assert not list(trainer.checkpoints(run.output_dir))
    assert not run.progress


def test_a_launch_is_refused_for_an_empty_dev_set_a_wrong_judge_or_a_taken_name(lab, base_model):
    empty = make_prompt_set(lab["project"], 0, name="empty")
    pairwise = judge_create(project=lab["project"], name="gpt-4", api_key_env=KEY_ENV)
    LanguageModel.objects.create(project=lab["project"], name="alpaca-65b")

    with pytest.raises(TrainingRejected, match="The dev set 'empty' is empty"):
        training_run_launch(
            project=lab["project"],
            name="a",
            training_set=lab["training_set"],
            base_model=str(base_model),
            dev_set=empty,
            judge=lab["judge"],
        )
    with pytest.raises(TrainingRejected, match="needs a judge in mode 'helpfulness_1_6'"):
        training_run_launch(
            project=lab["project"],
            name="b",
            training_set=lab["training_set"],
            base_model=str(base_model),
            dev_set=lab["dev_set"],
            judge=pairwise,
        )
    with pytest.raises(TrainingRejected, match="already has a model 'alpaca-65b'"):
        launch(lab, base_model, name="alpaca-65b")
    with pytest.raises(TrainingRejected, match="Unknown training setting 'lr'"):
        launch(lab, base_model, lr=1)
    assert not TrainingRun.objects.exists()


def test_a_cancelled_run_stops_with_a_checkpoint_and_resumes_from_it(lab, base_model, monkeypatch):
    monkeypatch.setattr(trainer, "STOP_CHECK_SECONDS", 0)
    monkeypatch.setattr(worker, "PROGRESS_EVERY_SECONDS", 0)
    report = worker._Reporter.__call__

    def cancel_after_first_step(self, progress):
        report(self, progress)
        if progress.step == 1:
            training_run_cancel(run=TrainingRun.objects.get(pk=self.run_id))

    monkeypatch.setattr(worker._Reporter, "__call__", cancel_after_first_step)
    run = launch(lab, base_model, epochs=3, select_from_epoch=3, select_to_epoch=3)

    run = training_run_execute(run_id=run.pk)

    assert run.status == Status.CANCELLED
    assert run.progress["step"] == 2
    assert trainer.last_checkpoint(run.output_dir).step == 2
    assert not run.scores.exists()

    monkeypatch.setattr(worker._Reporter, "__call__", report)
    run = training_run_execute(run_id=training_run_resume(run=run).pk)

    assert run.status == Status.DONE, run.message
    assert [h[0] for h in run.progress["history"]] == [1, 2, 3, 4, 5, 6]
    assert run.scores.get().epoch == 3


def test_a_queued_run_cancelled_never_starts(lab, base_model):
    run = training_run_cancel(run=launch(lab, base_model))

    run = training_run_execute(run_id=run.pk)

    assert run.status == Status.CANCELLED
    assert not run.plan and run.started_at is None


def test_a_second_delivery_leaves_a_live_run_alone(lab, base_model):
    from django.utils import timezone

    run = launch(lab, base_model)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=Status.RUNNING, worker="other:1", heartbeat_at=timezone.now()
    )

    with pytest.raises(worker.TrainingBusy):
        training_run_execute(run_id=run.pk)
    assert TrainingRun.objects.get(pk=run.pk).worker == "other:1"


def test_a_run_whose_judge_failed_resumes_at_selection_without_training_again(
    lab, base_model, judge_server
):
    lab["judge"].max_attempts = 1
    lab["judge"].save()
    judge_server.responder = lambda request: Reply("}}{{ no score here")
    run = training_run_execute(run_id=launch(lab, base_model).pk)
    assert run.status == Status.FAILED
    assert run.message.startswith("The judge scored no answer of any checkpoint: no verdict")
    assert run.scores.count() == 2 and not run.scores.filter(mean_score__isnull=False).exists()
    trained = run.progress["history"]

    judge_server.responder = lambda request: Reply("Score: 4")
    run = training_run_execute(run_id=training_run_resume(run=run).pk)

    assert run.status == Status.DONE, run.message
    assert run.progress["history"] == trained
    assert list(run.scores.values_list("mean_score", flat=True)) == [4.0, 4.0]
    assert run.scores.get(chosen=True).epoch == 1
