import pytest

from annotation.models import Round
from tests.annotation.reports.test_report import annotate
from tests.factories import make_project, make_round, make_user


@pytest.fixture
def round_(client) -> Round:
    """A small judged round its researcher is logged in to (a test file may define its own)."""
    user = make_user()
    round_ = make_round(prompts=4, baselines=("alpaca",), project=make_project("lab", user))
    annotate(round_, "crowd", "w1", "cctb", baseline="alpaca")
    annotate(round_, "judge", "gpt-4", "ccbb", baseline="alpaca")
    client.force_login(user)
    return round_
