import pytest

from tests.support.tiny_model import build_tiny_model


@pytest.fixture(autouse=True)
def _checkpoints_in_tmp(settings, tmp_path):
    settings.TRAINING_DIR = tmp_path / "training"


@pytest.fixture(scope="session")
def base_model(tmp_path_factory):
    """A tiny LLaMA whose tokenizer has no end-of-turn token yet, as a base model's has not."""
    pytest.importorskip("transformers", reason="the train extra (transformers) is not installed")
    return build_tiny_model(tmp_path_factory.mktemp("tiny-base"), layers=4, end_of_turn=False)
