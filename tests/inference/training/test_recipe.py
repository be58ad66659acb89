import re

import pytest

from inference.training.recipe import Recipe


def test_it_keeps_the_lima_defaults_and_resolves_them_by_model_size():
    recipe = Recipe()
    assert (recipe.epochs, recipe.learning_rate, recipe.final_learning_rate) == (15, 1e-5, 1e-6)
    assert (recipe.adam_beta1, recipe.adam_beta2, recipe.weight_decay) == (0.9, 0.95, 0.1)
    assert (recipe.warmup_steps, recipe.max_length, recipe.end_of_turn) == (0, 2048, "<EOT>")
    assert list(recipe.selection_epochs) == [5, 6, 7, 8, 9, 10]

    large, small = recipe.resolve(65_000_000_000), recipe.resolve(7_000_000_000)

    assert (large.batch_size, large.residual_dropout) == (32, 0.3)
    assert (small.batch_size, small.residual_dropout) == (64, 0.2)
    assert Recipe.from_overrides({"batch_size": 16}).resolve(65_000_000_000).batch_size == 16


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": 0}, "epochs must be an integer ≥ 1"),
        ({"learnig_rate": 1}, "Unknown training setting 'learnig_rate'"),
        ({"adam_beta2": 1.5}, "adam_beta2 must be a number in [0, 1)"),
        ({"epochs": 3}, "checkpoint selection starts at epoch 5, after the last of 3 epochs"),
        ({"launcher": "accelerate"}, "needs accelerate_config"),
        ({"residual_dropout": 1}, "residual_dropout must be a number in [0, 1)"),
    ],
)
def test_it_refuses_settings_that_cannot_work(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Recipe.from_overrides(overrides)
