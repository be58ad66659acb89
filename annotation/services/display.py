"""Prompts and answers as annotators see them: rendered once, stored, then served as stored."""

from django.utils.safestring import SafeString, mark_safe

from annotation.models import Prompt, Response
from annotation.rendering import PLAIN, RENDERER_VERSION, render, render_markdown


def text_shown(text_of: Prompt | Response, text_format: str) -> SafeString:
    """The HTML of a prompt or response in the round's text format.

    Markdown is rendered the first time it is shown (or after the renderer changed) and stored
    on the row; plain text is escaped on the fly, which costs no more than reading it.
    """
    if text_format == PLAIN:
        return render(text_of.text, PLAIN)
    if text_of.html_version != RENDERER_VERSION:
        text_of.html = render_markdown(text_of.text)
        text_of.html_version = RENDERER_VERSION
        type(text_of).objects.filter(pk=text_of.pk).update(
            html=text_of.html, html_version=RENDERER_VERSION
        )
    # Safe: stored only by the line above, from annotation.rendering's escaping renderer.
    return mark_safe(text_of.html)
