"""An absolute round's crowd page in a real Chromium, on a phone and a desktop: one answer
shown whole and uncovered, the scale's definitions on the buttons, keys that rate."""

import pytest

from annotation.models import LanguageModel, Project, Prompt, PromptSet, Rating, Round
from annotation.models import Response as ModelResponse
from annotation.services.rounds import round_create
from tests.browser.test_crowd_layout import (
    BAR_OVERLAPS,
    CODE,
    COVERED_PARTS,
    FOCUS_IN_TASK,
    LONG_ANSWER,
    MIN_TOUCH_TARGET,
    TABLE,
    Screen,
)

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.browser

SCREENS = [Screen(390, 844, is_phone=True), Screen(1280, 800, is_phone=False)]
ANSWERS = {"lima-secret": [CODE, LONG_ANSWER], "alpaca-secret": [TABLE, "No."]}
ITEMS = 4

GEOMETRY = """
() => {
  const box = (element) => {
    const { left, right, top, bottom } = element.getBoundingClientRect();
    return { left, right, top: top + scrollY, bottom: bottom + scrollY };
  };
  const answers = [...document.querySelectorAll("#task article.answer")];
  return {
    innerWidth: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    main: box(document.querySelector("main.crowd")),
    answers: answers.map(box),
    buttons: [...document.querySelectorAll("#task .choices button")].map(box),
  };
}
"""


def make_rated_round(width: int) -> Round:
    project = Project.objects.create(name=f"ratings lab {width}")
    prompt_set = PromptSet.objects.create(project=project, name="questions")
    prompts = [
        Prompt.objects.create(
            prompt_set=prompt_set, external_id=str(n), position=n, text=f"Question {n}, please?"
        )
        for n in range(2)
    ]
    models = []
    for name, texts in ANSWERS.items():
        model = LanguageModel.objects.create(project=project, name=name)
        models.append(model)
        for prompt, text in zip(prompts, texts, strict=True):
            ModelResponse.objects.create(prompt=prompt, model=model, text=text)
    return round_create(
        project=project,
        prompt_set=prompt_set,
        candidate=models[0],
        baselines=models[1:],
        kind=Round.Kind.ABSOLUTE,
        scale=Rating.Scale.FAIL_PASS_EXCELLENT,
        shared_items=0,
        items_per_worker=ITEMS,
        seed=7,
    )


@pytest.mark.parametrize("screen", SCREENS, ids=lambda screen: f"{screen.width}x{screen.height}")
def test_a_worker_rates_each_answer_with_a_click_or_a_key_on_any_screen(
    live_server, screen_page, screen_page_errors, screen, screenshot
):
    page, errors = screen_page, screen_page_errors
    round_ = make_rated_round(screen.width)
    page.goto(f"{live_server.url}/c/{round_.crowd_token}/?worker_id=rater-{screen.width}")
    expect(page.get_by_role("heading", level=1)).to_have_text("How good is this answer?")
    expect(page.locator(".instructions")).to_contain_text(
        "Fail: the answer does not meet the requirements of the question."
    )
    page.get_by_role("button", name="Start").click()
    progress = page.locator("#task .progress-text")
    page.wait_for_function("() => window.htmx !== undefined")
    chosen = ["fail", "pass", "excellent", "pass"]
    for position in range(1, ITEMS + 1):
        expect(progress).to_have_text(f"{position} of {ITEMS}")
        expect(page.locator("#task .answer h2")).to_have_text(["Answer"])
        buttons = page.locator("#task .choices button")
        expect(buttons).to_have_text(
            [
                "1 Fail: the answer does not meet the requirements of the question.",
                "2 Pass: the answer meets the requirements of the question.",
                "3 Excellent: the answer is excellent.",
            ]
        )
        geometry = page.evaluate(GEOMETRY)
        assert geometry["scrollWidth"] <= geometry["innerWidth"] <= screen.width, geometry
        (answer,) = geometry["answers"]
        main = geometry["main"]
        assert main["left"] <= answer["left"] and answer["right"] <= main["right"], geometry
        for button in geometry["buttons"]:
            # Below the answer, inside the window's width, big enough for a thumb.
            assert button["top"] >= answer["bottom"], geometry
            assert button["left"] >= 0 and button["right"] <= geometry["innerWidth"], geometry
            assert button["bottom"] - button["top"] >= MIN_TOUCH_TARGET, geometry
        assert page.evaluate(COVERED_PARTS) == []
        assert page.evaluate(BAR_OVERLAPS) == []
        for secret in ANSWERS:
            assert secret not in page.locator("body").inner_text()
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, f"crowd-rating-{screen.width}x{screen.height}-item-{position}")
        value = chosen[position - 1]
        if position % 2:
            page.keyboard.press({"fail": "1", "pass": "2", "excellent": "3"}[value])
        else:
            page.locator("#task .choices button", has_text=value.capitalize()).click()
        if position < ITEMS:
            expect(progress).to_have_text(f"{position + 1} of {ITEMS}")
            page.wait_for_function(FOCUS_IN_TASK, timeout=2_000)
    expect(page.locator("#completion-code")).not_to_be_empty()
    stored = Rating.objects.filter(item__round=round_).order_by("pk")
    assert list(stored.values_list("label", flat=True)) == chosen
    assert errors == []
