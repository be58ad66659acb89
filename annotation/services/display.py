"""Prompts and answers as annotators see them: rendered once, stored, then served as stored."""

from collections.abc import Callable, Collection
from typing import TypeVar

from django.utils.safestring import SafeString, mark_safe

from annotation.models import Item, Prompt, Response
from annotation.rendering import PLAIN, RENDERER_VERSION, render, render_markdown

StoredText = TypeVar("StoredText", Prompt, Response)


def text_shown(text_of: Prompt | Response, text_format: str) -> SafeString:
    """The HTML of a prompt or response in the round's text format.

    Markdown is rendered the first time it is shown (or after the renderer changed) and stored
    on the row; plain text is escaped on the fly, which costs no more than reading it.
    """
    if text_format == PLAIN:
        return render(_source(text_of), PLAIN)
    if text_of.html_version != RENDERER_VERSION:
        text_of.html = render_markdown(_source(text_of))
        text_of.html_version = RENDERER_VERSION
        type(text_of).objects.filter(pk=text_of.pk).update(
            html=text_of.html, html_version=RENDERER_VERSION
        )
    # Safe: stored only by the line above, from annotation.rendering's escaping renderer.
    return mark_safe(text_of.html)


def _source(text_of: Prompt | Response) -> str:
    # A multi-turn prompt is shown as its whole conversation, as the judge reads it.
    return text_of.shown_text if isinstance(text_of, Prompt) else text_of.text


def item_texts_shown(item: Item, text_format: str) -> tuple[SafeString, SafeString, SafeString]:
    """The prompt and the two answers in the order the item shows them (A, then B); a rated
    item's prompt, its one answer and no second."""
    if item.response is not None:
        return (
            text_shown(item.prompt, text_format),
            text_shown(item.response, text_format),
            SafeString(""),
        )
    assert item.candidate_response is not None and item.baseline_response is not None
    first, second = (
        (item.candidate_response, item.baseline_response)
        if item.candidate_first
        else (item.baseline_response, item.candidate_response)
    )
    return (
        text_shown(item.prompt, text_format),
        text_shown(first, text_format),
        text_shown(second, text_format),
    )


def texts_render(
    *,
    prompt_pks: Collection[int],
    response_pks: Collection[int],
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Render and store the Markdown of the given prompts and responses that lack it (or
    have an older renderer's); returns how many were rendered. `progress(done, total)` is
    called after each batch."""
    prompts, responses = _stale(Prompt, prompt_pks), _stale(Response, response_pks)
    total = len(prompts) + len(responses)
    done = _render_stored(Prompt, prompts, done=0, total=total, progress=progress)
    return _render_stored(Response, responses, done=done, total=total, progress=progress)


RENDER_BATCH = 1000


def _stale(model: type[Prompt] | type[Response], pks: Collection[int]) -> list[int]:
    return list(
        model.objects.filter(pk__in=list(pks))
        .exclude(html_version=RENDERER_VERSION)
        .values_list("pk", flat=True)
    )


def _render_stored(
    model: type[StoredText],
    pks: list[int],
    *,
    done: int,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> int:
    for start in range(0, len(pks), RENDER_BATCH):
        fields = ("text", "extra") if model is Prompt else ("text",)
        batch = list(model.objects.filter(pk__in=pks[start : start + RENDER_BATCH]).only(*fields))
        for text_of in batch:
            text_of.html = render_markdown(_source(text_of))
            text_of.html_version = RENDERER_VERSION
        model.objects.bulk_update(batch, ["html", "html_version"])
        done += len(batch)
        if progress is not None:
            progress(done, total)
    return done
