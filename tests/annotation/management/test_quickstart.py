"""The quickstart's demo: a pairwise round and an absolute one, ready to annotate, made once."""

import io

import pytest
from django.core.management import call_command

from annotation.demo import DEMO_PROMPTS
from annotation.models import Round

pytestmark = pytest.mark.django_db


def quickstart() -> str:
    out = io.StringIO()
    call_command("quickstart", stdout=out)
    return out.getvalue()


def test_it_makes_a_pairwise_and_an_absolute_demo_round_once(settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    first = quickstart()
    again = quickstart()
    pairwise = Round.objects.get(kind=Round.Kind.PAIRWISE)
    absolute = Round.objects.get(kind=Round.Kind.ABSOLUTE)
    assert pairwise.items.count() == len(DEMO_PROMPTS)
    assert (absolute.scale, absolute.items.count()) == (
        "fail_pass_excellent",
        2 * len(DEMO_PROMPTS),
    )
    for output in (first, again):
        assert f"Crowd link:        http://127.0.0.1:8000/c/{pairwise.crowd_token}/" in output
        assert f"Ratings link:      http://127.0.0.1:8000/c/{absolute.crowd_token}/" in output
    assert "(unchanged since the first quickstart)" in again
