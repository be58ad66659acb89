from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from annotation import rendering
from annotation.models import Prompt, Response
from tests.factories import make_round

pytestmark = pytest.mark.django_db


def rendered() -> set[int]:
    return {
        *Prompt.objects.values_list("html_version", flat=True),
        *Response.objects.values_list("html_version", flat=True),
    }


@override_settings(ROUND_RENDER_MAX_TEXTS=5)
def test_a_round_too_large_to_render_when_made_is_rendered_by_the_command():
    round_ = make_round(prompts=3, baselines=("a", "b"))
    assert rendered() == {0}

    out = StringIO()
    call_command("render_texts", str(round_.pk), stdout=out)

    assert rendered() == {rendering.RENDERER_VERSION}
    assert "rendered 3 of 12 texts" in out.getvalue()
    assert "Rendered 12 texts" in out.getvalue()
    again = StringIO()
    call_command("render_texts", str(round_.pk), stdout=again)
    assert "Rendered 0 texts" in again.getvalue()


def test_the_command_names_a_round_that_does_not_exist():
    with pytest.raises(CommandError, match="No round with id 999"):
        call_command("render_texts", "999", stdout=StringIO())
