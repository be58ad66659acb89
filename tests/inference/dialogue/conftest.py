import pytest

from annotation.models import LanguageModel
from tests.factories import make_project
from tests.support.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def chat_model(tmp_path_factory):
    """A tiny chat model with an end-of-turn token, run by the transformers backend."""
    pytest.importorskip("transformers", reason="the train extra (transformers) is not installed")
    return build_tiny_model(tmp_path_factory.mktemp("tiny-chat"))


@pytest.fixture
def talker(user, chat_model):
    """A project of the user's with a model to talk to."""
    project = make_project("dialogue lab", user)
    model = LanguageModel.objects.create(
        project=project,
        name="tiny-chat",
        backend=LanguageModel.Backend.TRANSFORMERS,
        config={"model": str(chat_model), "sampling": {"max_tokens": 6}},
    )
    return {"project": project, "model": model}
