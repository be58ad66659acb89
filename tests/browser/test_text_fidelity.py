"""What a crowd worker can read, in a real Chromium, equals what the judge reads.

Every answer of a corpus built to break renderers (angle brackets, tags, entities, code,
unbalanced Markdown) and a few hundred random strings of HTML-like characters are rendered as
the crowd page renders them; the visible text (innerText) must equal the source, apart from
Markdown markup and whitespace. A plain-text round keeps the whitespace too.
"""

import html
import random

import pytest

from annotation.models import LanguageModel, Project, Prompt, PromptSet
from annotation.models import Response as ModelResponse
from annotation.rendering import MARKDOWN, render
from annotation.services.rounds import round_create
from tests.support.text_corpus import CORPUS

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.browser

# No ":" or "@": "<a:b>" and "<a@b.c>" are CommonMark autolinks, whose brackets are markup.
HTML_LIKE = "ab <>/&;=\"'!-?#x\\"
VISIBLE_TEXTS = """() => [...document.querySelectorAll('.text')].map(block => block.innerText)"""


def words(text: str) -> str:
    return " ".join(text.split())


def random_texts(count: int) -> list[str]:
    rng = random.Random(20261202)
    # Each starts with a word, so that no "#", ">" or "-" begins a Markdown block.
    return [
        "x " + "".join(rng.choice(HTML_LIKE) for _ in range(rng.randint(1, 60)))
        for _ in range(count)
    ]


def unescaped_backslashes(text: str) -> str:
    """A backslash before ASCII punctuation is Markdown's escape: it is markup, not text."""
    out, i = [], 0
    while i < len(text):
        if (
            text[i] == "\\"
            and i + 1 < len(text)
            and text[i + 1] in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
        ):
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def test_visible_text_equals_the_source_apart_from_markdown_markup(page, page_errors):
    sources = [source for source, _ in CORPUS] + random_texts(300)
    expected = [visible for _, visible in CORPUS] + [
        unescaped_backslashes(text) for text in sources[len(CORPUS) :]
    ]
    blocks = "".join(f'<div class="text">{render(source, MARKDOWN)}</div>' for source in sources)
    page.set_content(f"<!doctype html><html><body>{blocks}</body></html>")
    shown = page.evaluate(VISIBLE_TEXTS)
    assert len(shown) == len(sources)
    mismatches = [
        (source, want, words(got))
        for source, want, got in zip(sources, expected, shown, strict=True)
        if words(got) != words(want)
    ]
    assert mismatches == []
    assert page.locator(".text script, .text img, .text style, .text [onerror]").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page_errors == []


def make_round_showing(answer: str, text_format: str):
    project = Project.objects.create(name=f"fidelity {text_format}")
    prompt_set = PromptSet.objects.create(project=project, name="one prompt")
    prompt = Prompt.objects.create(
        prompt_set=prompt_set, external_id="0", position=0, text="Show me <b>it</b>  as written"
    )
    candidate = LanguageModel.objects.create(project=project, name="candidate")
    baseline = LanguageModel.objects.create(project=project, name="baseline")
    ModelResponse.objects.create(prompt=prompt, model=candidate, text=answer)
    ModelResponse.objects.create(prompt=prompt, model=baseline, text="A short <i>baseline</i>.")
    return round_create(
        project=project,
        prompt_set=prompt_set,
        candidate=candidate,
        baselines=[baseline],
        shared_items=0,
        seed=7,
        text_format=text_format,
    )


def answers_shown(live_server, page, round_) -> tuple[str, list[str]]:
    page.goto(f"{live_server.url}/c/{round_.crowd_token}/?PROLIFIC_PID=reader-1")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#task .progress-text")).to_have_text("1 of 1")
    question = page.locator("#task .question .text").inner_text()
    answers = [
        page.locator(f'#task [aria-label="Answer {letter}"] .text').inner_text() for letter in "AB"
    ]
    return question, answers


def test_the_crowd_page_shows_an_answer_with_tags_and_generics_as_written(
    live_server, page, page_errors
):
    source, visible = CORPUS[0]  # std::vector<int> and template<typename T> in code spans
    answer = f"{source}\n\nPress <Ctrl>+<C> to copy, then wrap it in a <div> tag."
    round_ = make_round_showing(answer, "markdown")
    question, answers = answers_shown(live_server, page, round_)
    assert words(question) == "Show me <b>it</b> as written"
    assert words(visible + " Press <Ctrl>+<C> to copy, then wrap it in a <div> tag.") in [
        words(text) for text in answers
    ]
    assert page_errors == []


def test_a_plain_text_round_keeps_every_character_and_its_whitespace(
    live_server, page, page_errors
):
    answer = "Step 1:\n    indented <code>\n\n\tTabbed **not bold** &amp; `not code`\n  end"
    round_ = make_round_showing(answer, "plain")
    question, answers = answers_shown(live_server, page, round_)
    assert question == "Show me <b>it</b>  as written"
    assert answer in answers
    assert html.escape(answer) not in answers  # Escaped once, shown unescaped.
    assert page_errors == []
