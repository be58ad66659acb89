import pytest

from inference.training.services import training_set_upload
from tests.support.training import jsonl


@pytest.fixture
def lab(lab):
    """The training lab with two training sets more: 2 and 4 examples."""
    project = lab["project"]
    return {
        **lab,
        "small": training_set_upload(project=project, name="2 examples", raw=jsonl(2)),
        "large": training_set_upload(project=project, name="4 examples", raw=jsonl(4)),
    }
