"""A crowd worker's live dialogue in a real Chromium, on a phone and a desktop: the worker opens
the study's link, writes, a real Celery worker has the tiny model answer, the worker labels each
answer and gets a completion code; the model is never named on the page."""

import re

import pytest

from annotation.models import LanguageModel, Rating
from inference.dialogue.services import study_create
from tests.browser.test_crowd_layout import MIN_TOUCH_TARGET, Screen
from tests.factories import make_project, make_user

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(
    "screen",
    [Screen(390, 844, is_phone=True), Screen(1280, 800, is_phone=False)],
    ids=lambda screen: f"{screen.width}x{screen.height}",
)
def test_a_crowd_worker_talks_to_an_unnamed_model_and_gets_a_code(
    live_server, screen_page, screen_page_errors, screen, chat_model, celery_worker, screenshot
):
    page = screen_page
    researcher = make_user(f"lin-{screen.width}")
    project = make_project(f"dialogue study {screen.width}", researcher)
    model = LanguageModel.objects.create(
        project=project,
        name="secret-tiny-chat",
        backend=LanguageModel.Backend.TRANSFORMERS,
        config={"model": str(chat_model), "sampling": {"max_tokens": 6}},
    )
    study = study_create(project=project, models=[model], name="live", user=researcher, turns=2)
    page.goto(f"{live_server.url}/talk/{study.token}/?PROLIFIC_PID=pid-{screen.width}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Talk to a model")
    expect(page.get_by_label("Your worker id")).to_have_value(f"pid-{screen.width}")
    page.get_by_role("button", name="Start").click()
    page.wait_for_function("() => window.htmx !== undefined")
    for number, (message, label) in enumerate(
        [("tell me a story about a cat", "Excellent"), ("<b>and</b> then", "Fail")], start=1
    ):
        box = page.get_by_label("Your first message" if number == 1 else "Your reply")
        box.fill(message)
        page.get_by_role("button", name="Send").click()
        labels = page.get_by_role("form", name=f"Label answer {number}")
        expect(labels).to_be_visible(timeout=60_000)
        for button in labels.get_by_role("button").all():
            geometry = button.bounding_box()
            assert geometry["height"] >= MIN_TOUCH_TARGET
            assert geometry["x"] >= 0 and geometry["x"] + geometry["width"] <= screen.width
        labels.get_by_role("button", name=label).click()
        expect(
            page.get_by_role("form", name=f"Label answer {number}").get_by_role(
                "button", name=label
            )
        ).to_have_attribute("aria-pressed", "true")
        assert page.evaluate("document.documentElement.scrollWidth") <= screen.width
        assert "secret-tiny-chat" not in page.locator("body").inner_text()
    expect(page.get_by_text("<b>and</b> then")).to_be_visible()
    code = page.locator("#completion-code")
    expect(code).to_have_text(re.compile(r"^[A-Z2-7]{10}$"), timeout=5_000)
    screenshot(page, f"dialogue-study-{screen.width}x{screen.height}")
    labels = Rating.objects.filter(annotator__kind="crowd").order_by("turn")
    assert list(labels.values_list("label", flat=True)) == ["excellent", "fail"]
    assert screen_page_errors == []
