import itertools
import json

import pytest

from inference.training.recipe import Recipe
from inference.training.trainer import (
    CHECKPOINT_MARK,
    TrainingInvalid,
    checkpoints,
    last_checkpoint,
    linear_to_floor,
    load_config,
    plan_training,
    train,
)
from tests.support.training import FAST, examples

torch = pytest.importorskip("torch")


def _plan(base_model, **overrides):
    return plan_training(
        config=load_config(str(base_model)), recipe=Recipe.from_overrides({**FAST, **overrides})
    )


def _train(base_model, output_dir, plan, **kwargs):
    reports = []
    outcome = train(
        base_model=str(base_model),
        examples=examples(4),
        plan=plan,
        output_dir=output_dir,
        report=reports.append,
        **kwargs,
    )
    return outcome, reports


def test_a_few_steps_lower_the_loss(base_model, tmp_path):
    plan = _plan(base_model, epochs=5, learning_rate=3e-3, final_learning_rate=1e-3)

    outcome, reports = _train(base_model, tmp_path, plan)

    losses = [r.loss for r in reports]
    assert outcome.step == outcome.max_steps == len(losses) == 10
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.3


def test_the_learning_rate_is_1e5_at_the_first_step_and_1e6_at_the_last(base_model, tmp_path):
    plan = _plan(base_model, epochs=2)

    _, reports = _train(base_model, tmp_path, plan)

    rates = [r.learning_rate for r in reports]
    assert len(rates) == 4
    assert rates[0] == 1e-5
    assert rates[-1] == pytest.approx(1e-6, rel=1e-9, abs=0)
    assert rates == pytest.approx([1e-5, 7e-6, 4e-6, 1e-6])
    # Progress carries what the page shows.
    last = reports[-1]
    assert (last.step, last.max_steps, last.epoch) == (4, 4, 2.0)
    assert last.tokens_per_second > 0 and last.eta_seconds == 0


def test_the_schedule_decays_linearly_to_the_floor_with_no_warm_up():
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([weight], lr=1e-5)
    schedule = linear_to_floor(optimizer, steps=10, start=1e-5, end=1e-6)
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[0] == 1e-5 and rates[-1] == pytest.approx(1e-6)
    assert all(a > b for a, b in itertools.pairwise(rates))


def test_it_uses_adamw_with_the_papers_betas_and_weight_decay(base_model, tmp_path):
    seen = {}

    class Spy:
        def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
            seen["optimizer"] = optimizer
            seen["args"] = args

        def __getattr__(self, name):
            return lambda *args, **kwargs: None

    _train(base_model, tmp_path, _plan(base_model, epochs=1, select_to_epoch=1), callbacks=[Spy()])

    optimizer = seen["optimizer"]
    assert type(getattr(optimizer, "optimizer", optimizer)).__name__ == "AdamW"
    group = optimizer.param_groups[0]
    assert group["betas"] == (0.9, 0.95)
    assert group["weight_decay"] == 0.1
    assert seen["args"].warmup_steps == 0


class Interrupted(Exception):
    pass


class CrashAfterSaving:
    """Kills training right after the checkpoint of a given step is written."""

    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Interrupted

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def test_an_interrupted_run_continues_from_its_last_checkpoint(base_model, tmp_path):
    plan = _plan(base_model, epochs=3, save_every_steps=1, learning_rate=1e-3)
    straight, straight_reports = _train(base_model, tmp_path / "straight", plan)

    with pytest.raises(Interrupted):
        _train(base_model, tmp_path / "resumed", plan, callbacks=[CrashAfterSaving(3)])
    assert last_checkpoint(tmp_path / "resumed").step == 3
    resumed, reports = _train(base_model, tmp_path / "resumed", plan)

    assert resumed.resumed_from == 3
    assert [r.step for r in reports] == [4, 5, 6]
    assert resumed.step == resumed.max_steps == straight.step == 6
    # The same batches in the same order, from the same optimizer state.
    assert [r.loss for r in reports] == pytest.approx([r.loss for r in straight_reports[3:]])
    assert [r.learning_rate for r in reports] == [r.learning_rate for r in straight_reports[3:]]


def test_it_stops_when_asked_and_keeps_a_checkpoint_to_resume_from(base_model, tmp_path):
    asked = []

    def should_stop():
        asked.append(True)
        return True

    outcome, _ = _train(base_model, tmp_path, _plan(base_model, epochs=3), should_stop=should_stop)

    assert outcome.stopped and outcome.step == 1 < outcome.max_steps
    assert last_checkpoint(tmp_path).step == 1
    resumed, _ = _train(base_model, tmp_path, _plan(base_model, epochs=3))
    assert resumed.resumed_from == 1 and resumed.step == 6


def test_it_keeps_weights_of_the_selection_epochs_and_the_newest_resumable(base_model, tmp_path):
    plan = _plan(base_model, epochs=3, save_every_steps=1, select_from_epoch=2, select_to_epoch=2)

    _train(base_model, tmp_path, plan)

    kept = checkpoints(tmp_path)
    assert [(c.step, c.epoch, c.epoch_end) for c in kept] == [(4, 2, True), (6, 3, True)]
    assert not kept[0].resumable and (kept[0].path / "model.safetensors").is_file()
    assert (kept[0].path / "tokenizer_config.json").is_file()
    assert kept[1].resumable
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]
    assert json.loads((kept[0].path / CHECKPOINT_MARK).read_text())["epoch"] == 2


def test_a_missing_base_model_fails_with_a_clear_message(tmp_path):
    with pytest.raises(TrainingInvalid, match="does not exist on this worker"):
        load_config(str(tmp_path / "llama-65b"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingInvalid, match=r"has no config\.json"):
        load_config(str(tmp_path / "empty"))


def test_too_little_memory_fails_before_training(base_model):
    with pytest.raises(TrainingInvalid, match=r"Not enough memory: fine-tuning 0\.0B parameters"):
        _plan(base_model, memory_limit_gb=0.5)


def test_it_plans_gradient_accumulation_when_the_batch_does_not_fit(base_model):
    plan = _plan(base_model, batch_size=8, micro_batch_size=2)
    assert (plan.micro_batch_size, plan.gradient_accumulation) == (2, 4)
    plan = _plan(base_model, batch_size=8)
    assert (plan.micro_batch_size, plan.gradient_accumulation) == (8, 1)
    assert plan.precision == "fp32" and plan.device == "cpu"
    with pytest.raises(TrainingInvalid, match="micro_batch_size 3 does not divide"):
        _plan(base_model, batch_size=8, micro_batch_size=3)
