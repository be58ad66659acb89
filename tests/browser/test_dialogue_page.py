"""A live dialogue in a real Chromium, on a phone and a desktop: the person writes, a real
Celery worker has the tiny model answer through the transformers backend, the person labels
each answer as it comes, and the report counts the labels."""

import pytest

from annotation.models import LanguageModel, Rating
from tests.browser.test_crowd_layout import Screen
from tests.factories import make_project, make_user

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.browser
PASSWORD = "correct-horse-battery-7"


@pytest.mark.parametrize(
    "screen",
    [Screen(390, 844, is_phone=True), Screen(1280, 800, is_phone=False)],
    ids=lambda screen: f"{screen.width}x{screen.height}",
)
def test_a_person_talks_to_a_model_and_labels_its_answers(
    live_server, screen_page, screen_page_errors, screen, chat_model, celery_worker, screenshot
):
    page = screen_page
    user = make_user(f"ada-{screen.width}", PASSWORD)
    project = make_project(f"dialogue lab {screen.width}", user)
    model = LanguageModel.objects.create(
        project=project,
        name="tiny-chat",
        backend=LanguageModel.Backend.TRANSFORMERS,
        config={"model": str(chat_model), "sampling": {"max_tokens": 6}},
    )
    page.goto(f"{live_server.url}/accounts/login/?next=/inference/dialogues/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    start = page.get_by_role("form", name="Start a dialogue")
    start.get_by_label("Model").select_option(label="tiny-chat")
    start.get_by_label("Turns").fill("2")
    start.get_by_role("button", name="Start").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dialogue with tiny-chat")

    for number, (message, label) in enumerate(
        [("tell me a story about a cat", "Excellent"), ("<b>and</b> then", "Fail")], start=1
    ):
        page.get_by_label("Your message").fill(message)
        page.get_by_role("button", name="Send").click()
        labels = page.get_by_role("form", name=f"Label answer {number}")
        expect(labels).to_be_visible(timeout=60_000)
        labels.get_by_role("button", name=label).click()
        expect(
            page.get_by_role("form", name=f"Label answer {number}").get_by_role(
                "button", name=label
            )
        ).to_have_attribute("aria-pressed", "true")
        assert page.evaluate("document.documentElement.scrollWidth") <= screen.width
    expect(page.get_by_text("<b>and</b> then")).to_be_visible()
    expect(page.get_by_text("The dialogue is finished with 2 answers.")).to_be_visible()
    screenshot(page, f"dialogue-{screen.width}x{screen.height}")
    assert list(
        Rating.objects.filter(model=model).order_by("turn").values_list("label", flat=True)
    ) == [
        "excellent",
        "fail",
    ]

    page.get_by_role("link", name="Report").click()
    row = page.locator("#dialogue-report tbody tr")
    expect(row).to_contain_text("tiny-chat")
    expect(row).to_contain_text("1 of 2")
    expect(page.get_by_role("img", name="Fail / Pass / Excellent shares")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= screen.width
    assert screen_page_errors == []
