"""A crowd round over dialogue turns in a real Chromium, on a phone and a desktop: each answer
is shown after the whole conversation before it, who said what readable, the model unnamed."""

import json

import pytest

from annotation.models import Rating
from inference.dialogue.imports import dialogues_import
from inference.dialogue.services import dialogue_round_create
from tests.browser.test_crowd_layout import COVERED_PARTS, Screen
from tests.factories import make_project

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.browser

CONVERSATION = [
    "Plan a three-day trip to Kyoto in autumn, on a student's budget.",
    "Day one: Fushimi Inari at dawn, when it is free and quiet. " * 8,
    "And where should I sleep?",
    "A hostel near Kyoto Station keeps train fares low.",
]


@pytest.mark.parametrize(
    "screen",
    [Screen(390, 844, is_phone=True), Screen(1280, 800, is_phone=False)],
    ids=lambda screen: f"{screen.width}x{screen.height}",
)
def test_a_worker_labels_each_answer_after_the_conversation_before_it(
    live_server, screen_page, screen_page_errors, screen, screenshot
):
    page = screen_page
    project = make_project(f"crowd dialogues {screen.width}")
    raw = (json.dumps({"conversations": CONVERSATION}) + "\n").encode()
    dialogues_import(project=project, raw=raw, file="talks.jsonl", model_name="secret-lima")
    model = project.models.get()
    round_ = dialogue_round_create(project=project, models=[model], name="turns")
    page.goto(f"{live_server.url}/c/{round_.crowd_token}/?worker_id=w-{screen.width}")
    page.get_by_role("button", name="Start").click()
    page.wait_for_function("() => window.htmx !== undefined")
    labelled = []
    for _ in range(2):
        question = page.locator("#task .question")
        expect(question).to_contain_text("The person")
        answer = page.locator("#task article.answer").inner_text()
        shown = question.inner_text()
        if "A hostel" in answer:
            # The second answer: the whole conversation before it, in order.
            positions = [shown.index(text.strip()[:40]) for text in CONVERSATION[:3]]
            assert positions == sorted(positions) and "The model" in shown
        else:
            assert "Day one" in answer and "The model" not in shown
        assert "secret-lima" not in page.locator("body").inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= screen.width
        assert page.evaluate(COVERED_PARTS) == []
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, f"crowd-dialogue-{screen.width}x{screen.height}-{len(labelled)}")
        labelled.append("A hostel" in answer)
        page.keyboard.press("2")
        if len(labelled) < 2:
            expect(page.locator("#task .progress-text")).to_have_text("2 of 2")
    expect(page.locator("#completion-code")).not_to_be_empty()
    assert sorted(labelled) == [False, True]
    assert Rating.objects.filter(item__round=round_, label="pass").count() == 2
    assert screen_page_errors == []
