"""A crowd worker's whole pass through a round, in a real Chromium.

Keyboard answers swapped in by htmx (no full page load), the completion code, what the
database recorded, Markdown with raw HTML shown as text, and blinding: no model name ever
reaches the page.
"""

import pytest

from annotation.models import Annotation, Annotator, LanguageModel, Project, Prompt, PromptSet
from annotation.models import Response as ModelResponse
from annotation.services.completion import completion_code_for
from annotation.services.rounds import round_create

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.browser

CANDIDATE_NAME = "secret-model-alpha"
BASELINE_NAME = "secret-model-beta"
HOSTILE = (
    "Try *Miso* for a calm cat.\n\n"
    "<script>window.__pwned = 1</script>\n\n"
    '<img src=x onerror="window.__pwned=2">\n\n'
    "More names: [link](javascript:window.__pwned=3)"
)
# (prompt, candidate response, baseline response); each response has a visible marker text
# (after rendering) that identifies it on the page.
CONVERSATIONS = [
    (
        "How do I reverse a list in Python?",
        "Use slicing:\n\n```python\nnumbers = [1, 2, 3]\nprint(numbers[::-1])\n```\n\n"
        "That prints `[3, 2, 1]`.",
        "Call `list.reverse()`, which reverses the list in place.",
    ),
    (
        "Give me two tips for writing tests.",
        "Two tips:\n\n- Test behaviour, not implementation.\n- Keep each test small.",
        "1. Name tests after what they check.\n2. Run them on every commit.",
    ),
    ("What is a good name for a cat?", HOSTILE, "Whiskers is a classic."),
]
MARKERS = {
    CONVERSATIONS[0][1]: "numbers[::-1]",
    CONVERSATIONS[0][2]: "reverses the list in place",
    CONVERSATIONS[1][1]: "Keep each test small",
    CONVERSATIONS[1][2]: "Run them on every commit",
    CONVERSATIONS[2][1]: "Miso",
    CONVERSATIONS[2][2]: "Whiskers is a classic",
}


def make_blinded_round(project_name: str = "blinding lab"):
    """The same round as make_round(prompts=3, annotators_per_item=1, shared_items=0,
    items_per_worker=3), with Markdown and hostile HTML in the responses and model names
    that the tests look for in the pages."""
    project = Project.objects.create(name=project_name)
    prompt_set = PromptSet.objects.create(project=project, name="markdown prompts")
    candidate = LanguageModel.objects.create(project=project, name=CANDIDATE_NAME)
    baseline = LanguageModel.objects.create(project=project, name=BASELINE_NAME)
    for position, (question, candidate_text, baseline_text) in enumerate(CONVERSATIONS):
        prompt = Prompt.objects.create(
            prompt_set=prompt_set, external_id=str(position), position=position, text=question
        )
        ModelResponse.objects.create(prompt=prompt, model=candidate, text=candidate_text)
        ModelResponse.objects.create(prompt=prompt, model=baseline, text=baseline_text)
    return round_create(
        project=project,
        prompt_set=prompt_set,
        candidate=candidate,
        baselines=[baseline],
        annotators_per_item=1,
        shared_items=0,
        items_per_worker=3,
        seed=1234,
    )


def wait_for_scripts(page) -> None:
    page.wait_for_load_state("load")
    page.wait_for_function("() => window.htmx !== undefined")


def test_crowd_worker_answers_three_items_with_the_keyboard(
    live_server, page, page_errors, screenshot
):
    round_ = make_blinded_round()
    assert set(round_.items.values_list("candidate_first", flat=True)) == {True, False}

    page.goto(f"{live_server.url}/c/{round_.crowd_token}/?PROLIFIC_PID=worker-7")
    instructions = page.locator(".instructions")
    expect(instructions).to_contain_text("super-intelligent AI assistant")
    expect(instructions).to_contain_text("empathy")
    expect(page.locator("#worker_id")).to_have_value("worker-7")
    page.get_by_role("button", name="Start").click()

    progress = page.locator("#task .progress-text")
    expect(progress).to_have_text("1 of 3")
    wait_for_scripts(page)
    screenshot(page, "crowd-item")
    page.evaluate("window.__marker = 42")
    navigations: list[str] = []
    page.on(
        "framenavigated",
        lambda frame: navigations.append(frame.url) if frame == page.main_frame else None,
    )

    shown: list[tuple[str, str, str]] = []  # (question, Answer A text, Answer B text)
    seen_code = seen_list = seen_hostile = False
    for key, position in (("1", 1), ("2", 2), ("3", 3)):
        expect(progress).to_have_text(f"{position} of 3")
        html = page.content()
        assert CANDIDATE_NAME not in html
        assert BASELINE_NAME not in html
        task = page.locator("#task")
        shown.append(
            (
                task.locator(".question .text").inner_text().strip(),
                task.locator('[aria-label="Answer A"] .text').inner_text(),
                task.locator('[aria-label="Answer B"] .text').inner_text(),
            )
        )
        if task.locator("pre code").count():
            expect(task.locator("pre code")).to_contain_text("print(numbers[::-1])")
            seen_code = True
        if task.locator(".answer ul > li, .answer ol > li").count():
            expect(task.locator(".answer ul > li")).to_have_count(2)
            expect(task.locator(".answer ol > li")).to_have_count(2)
            seen_list = True
        if "Miso" in html:
            seen_hostile = True
            expect(task.locator(".answer em")).to_have_text("Miso")
            expect(task.locator("script, img, [onerror]")).to_have_count(0)
            # Shown as written, as the judge reads it: the HTML and the link are text.
            expect(task.locator(".answer a")).to_have_count(0)
            expect(task.locator(".answers")).to_contain_text("<script>window.__pwned = 1</script>")
            expect(task.locator(".answers")).to_contain_text("[link](javascript:window.__pwned=3)")
        assert page.evaluate("typeof window.__pwned") == "undefined"

        page.keyboard.press(key)
        if position < 3:
            expect(progress).to_have_text(f"{position + 1} of 3")
        # htmx swapped #task in place: the page (and its window) is the same one.
        assert page.evaluate("window.__marker") == 42
        assert navigations == []

    expect(page.locator("#completion-code")).to_have_text(completion_code_for(round_, "worker-7"))
    expect(page.locator(".complete")).to_contain_text("You answered 3 items.")
    assert page.evaluate("window.__marker") == 42
    assert navigations == []
    assert page.evaluate("typeof window.__pwned") == "undefined"
    html = page.content()
    assert CANDIDATE_NAME not in html
    assert BASELINE_NAME not in html
    assert seen_code and seen_list and seen_hostile
    assert page_errors == []

    annotations = list(
        Annotation.objects.filter(annotator__kind=Annotator.Kind.CROWD, annotator__name="worker-7")
        .select_related("item__prompt", "item__candidate_response", "item__baseline_response")
        .order_by("created_at", "pk")
    )
    assert [a.shown_choice for a in annotations] == ["A", "B", "N"]
    assert len({a.item_id for a in annotations}) == 3
    for annotation, (question, answer_a, answer_b) in zip(annotations, shown, strict=True):
        item = annotation.item
        # The item recorded is the one the worker saw, in the order the worker saw it.
        assert question == item.prompt.text
        first, second = (
            (item.candidate_response, item.baseline_response)
            if item.candidate_first
            else (item.baseline_response, item.candidate_response)
        )
        assert MARKERS[first.text] in answer_a
        assert MARKERS[second.text] in answer_b
        assert annotation.candidate_first == item.candidate_first
        expected = {
            "A": "candidate" if item.candidate_first else "baseline",
            "B": "baseline" if item.candidate_first else "candidate",
            "N": "tie",
        }[annotation.shown_choice]
        assert annotation.choice == expected
        assert annotation.seconds_spent is not None
        assert annotation.seconds_spent >= 0


def test_answers_stack_on_a_narrow_screen_and_sit_side_by_side_on_a_wide_one(
    live_server, page, screenshot
):
    round_ = make_blinded_round("layout lab")
    page.set_viewport_size({"width": 400, "height": 900})
    page.goto(f"{live_server.url}/c/{round_.crowd_token}/?worker_id=narrow-1")
    page.get_by_role("button", name="Start").click()
    answer_a = page.locator('article[aria-label="Answer A"]')
    answer_b = page.locator('article[aria-label="Answer B"]')
    expect(answer_a).to_be_visible()
    expect(answer_b).to_be_visible()

    a, b = answer_a.bounding_box(), answer_b.bounding_box()
    assert b["y"] >= a["y"] + a["height"], (a, b)
    assert a["width"] <= 400 and b["width"] <= 400
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    screenshot(page, "crowd-item-narrow")

    page.set_viewport_size({"width": 1200, "height": 900})
    page.wait_for_function(
        """() => {
            const [a, b] = document.querySelectorAll("article.answer");
            return Math.abs(a.getBoundingClientRect().top - b.getBoundingClientRect().top) < 1;
        }"""
    )
    a, b = answer_a.bounding_box(), answer_b.bounding_box()
    assert abs(a["y"] - b["y"]) < 1, (a, b)
    assert b["x"] >= a["x"] + a["width"], (a, b)
