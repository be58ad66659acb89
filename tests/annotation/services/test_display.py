"""Prompts and answers are rendered once, stored, and served as stored afterwards."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation import rendering
from annotation.models import Prompt, Response, Round
from annotation.services.display import text_shown
from tests.factories import make_round

pytestmark = pytest.mark.django_db


def test_a_rounds_markdown_is_rendered_and_stored_when_the_round_is_made():
    make_round(prompts=3, baselines=("a", "b"))
    for text_of in [*Prompt.objects.all(), *Response.objects.all()]:
        assert text_of.html_version == rendering.RENDERER_VERSION
        assert text_of.html == rendering.render_markdown(text_of.text)


def test_markdown_not_rendered_yet_is_rendered_on_first_show_and_stored():
    make_round(prompts=1)
    Response.objects.update(html="", html_version=0)
    response = Response.objects.earliest("pk")
    first = text_shown(response, Round.TextFormat.MARKDOWN)
    stored = Response.objects.get(pk=response.pk)
    assert stored.html == str(first) and stored.html_version == rendering.RENDERER_VERSION
    with CaptureQueriesContext(connection) as shown_again:
        assert text_shown(stored, Round.TextFormat.MARKDOWN) == first
    assert len(shown_again) == 0


def test_a_new_renderer_version_renders_again(monkeypatch):
    make_round(prompts=1)
    response = Response.objects.earliest("pk")
    text_shown(response, Round.TextFormat.MARKDOWN)
    Response.objects.filter(pk=response.pk).update(html="<p>stale</p>")
    monkeypatch.setattr("annotation.services.display.RENDERER_VERSION", 99)
    stale = Response.objects.get(pk=response.pk)
    assert "stale" not in text_shown(stale, Round.TextFormat.MARKDOWN)
    assert Response.objects.get(pk=response.pk).html_version == 99


def test_plain_text_is_not_stored():
    make_round(prompts=1, text_format=Round.TextFormat.PLAIN)
    response = Response.objects.earliest("pk")
    Response.objects.filter(pk=response.pk).update(text="a <b>\n  c")
    response.refresh_from_db()
    assert text_shown(response, Round.TextFormat.PLAIN) == (
        '<div class="plain-text">a &lt;b&gt;\n  c</div>'
    )
    assert Response.objects.get(pk=response.pk).html_version == 0
