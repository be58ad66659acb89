"""Imported conversations in a real Chromium, on a phone and a desktop: a researcher uploads two
models' conversations through the page, labels an imported one turn by turn, and compares the
two models' dialogues on the same opening message, shown blinded side by side (stacked on the
phone); the report counts the verdict."""

import json

import pytest

from annotation.models import Rating
from inference.dialogue.models import DialogueComparison
from tests.browser.test_crowd_layout import Screen
from tests.factories import make_project, make_user

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.browser
PASSWORD = "correct-horse-battery-7"
OPENING = "Plan a three-day trip to Kyoto in autumn, on a student's budget."


def conversation(style: str) -> bytes:
    turns = [
        OPENING,
        f"{style} Day one: Fushimi Inari at dawn, when it is free and quiet. " * 6,
        "And where should I sleep?",
        f"{style} A hostel near Kyoto Station keeps train fares low.",
    ]
    return (json.dumps({"conversations": turns, "source": "browser test"}) + "\n").encode()


def upload(page, model: str, style: str) -> None:
    form = page.get_by_role("form", name="Import conversations")
    form.get_by_label("Model of every conversation").fill(model)
    form.get_by_label("File").set_input_files(
        files=[{"name": f"{model}.jsonl", "mimeType": "application/json",
                "buffer": conversation(style)}]
    )  # fmt: skip
    form.get_by_role("button", name="Import").click()
    expect(page.get_by_text(f"{model}.jsonl: 1 conversations added, 2 answers")).to_be_visible()


@pytest.mark.parametrize(
    "screen",
    [Screen(390, 844, is_phone=True), Screen(1280, 800, is_phone=False)],
    ids=lambda screen: f"{screen.width}x{screen.height}",
)
def test_imported_dialogues_are_labelled_and_compared_blinded(
    live_server, screen_page, screen_page_errors, screen, screenshot
):
    page = screen_page
    user = make_user(f"grace-{screen.width}", PASSWORD)
    make_project(f"dialogue study {screen.width}", user)
    page.goto(f"{live_server.url}/accounts/login/?next=/inference/dialogues/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    upload(page, "lima-zero-shot", "Okay.")
    upload(page, "lima-dialogue", "Sure!")

    # Label an imported conversation: no message box, the person's turns are "The person".
    page.get_by_role("row", name="lima-dialogue").get_by_role("link").click()
    source = "Imported from lima-dialogue.jsonl, line 1 (browser test)."
    expect(page.locator("#dialogue-source")).to_have_text(source)
    expect(page.get_by_label("Your message")).to_have_count(0)
    expect(page.get_by_role("heading", name="The person")).to_have_count(2)
    for number, label in ((1, "Excellent"), (2, "Pass")):
        page.get_by_role("form", name=f"Label answer {number}").get_by_role(
            "button", name=label
        ).click()
        labels_form = page.get_by_role("form", name=f"Label answer {number}")
        pressed = labels_form.get_by_role("button", name=label)
        expect(pressed).to_have_attribute("aria-pressed", "true")
    labels = Rating.objects.filter(annotator__name=user.username).values_list("label", flat=True)
    assert sorted(labels) == ["excellent", "pass"]

    page.goto(f"{live_server.url}/inference/dialogues/compare/")
    page.get_by_label("One model").select_option(label="lima-dialogue")
    page.get_by_label("The other").select_option(label="lima-zero-shot")
    page.get_by_role("button", name="Show pairs").click()
    comparison = page.locator("#comparison")
    expect(comparison.get_by_role("status")).to_have_text("0 of 1 pair judged.")
    left, right = page.locator("#left-dialogue"), page.locator("#right-dialogue")
    expect(left).to_contain_text(OPENING)
    expect(right).to_contain_text(OPENING)
    # Blinded: the two texts, never the models' names.
    shown = comparison.inner_text()
    assert "Okay. Day one" in shown and "Sure! Day one" in shown
    assert "lima" not in shown
    boxes = [left.bounding_box(), right.bounding_box()]
    for box in boxes:
        assert box["x"] >= 0 and box["x"] + box["width"] <= screen.width
    if screen.is_phone:
        assert boxes[1]["y"] >= boxes[0]["y"] + boxes[0]["height"]
    else:
        assert boxes[0]["y"] == boxes[1]["y"]
        assert boxes[0]["x"] + boxes[0]["width"] <= boxes[1]["x"]
    assert page.evaluate("document.documentElement.scrollWidth") <= screen.width
    buttons = page.get_by_role("form", name="Which dialogue is better?").get_by_role("button")
    expect(buttons).to_have_text(["A is better", "B is better", "Neither is significantly better"])
    for index in range(3):
        assert buttons.nth(index).bounding_box()["height"] >= 44
    screenshot(page, f"dialogue-compare-{screen.width}x{screen.height}")
    a_text = left.inner_text()
    buttons.first.click()
    expect(page.locator("#all-judged")).to_be_visible()
    verdict = DialogueComparison.objects.get(annotator__name=user.username)
    winner = verdict.first if verdict.choice == "first" else verdict.second
    assert winner.turns.get(index=1).text.split(" Day")[0] in a_text
    assert verdict.first_on_left == (winner == verdict.first)

    page.get_by_role("link", name="Report").click()
    row = page.locator("#dialogue-comparisons tbody tr")
    expect(row).to_have_count(1)
    expect(page.get_by_role("img", name="How often")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= screen.width
    assert not screen_page_errors
