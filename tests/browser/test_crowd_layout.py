"""The crowd worker's page on a phone, a tablet and a desktop, in a real Chromium.

Every item must show both answers whole: nothing widens the page, long code and wide tables
scroll inside their own block, nothing (the choice buttons above all) covers either answer
wherever it is scrolled to, and the two answers are equal columns from BREAKPOINT up, stacked
below it. After each answer, focus lands in the new item for keyboard and screen reader users.
"""

from typing import NamedTuple

import pytest

from annotation.models import LanguageModel, Project, Prompt, PromptSet
from annotation.models import Response as ModelResponse
from annotation.services.rounds import round_create

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.browser

# The width from which the answers sit side by side (static/crowd.css says the same).
BREAKPOINT = 768
MIN_TOUCH_TARGET = 44


class Screen(NamedTuple):
    width: int
    height: int
    is_phone: bool


SCREENS = [
    Screen(360, 740, is_phone=True),
    Screen(390, 844, is_phone=True),
    Screen(768, 1024, is_phone=False),
    Screen(1280, 800, is_phone=False),
    Screen(1920, 1080, is_phone=False),
]

LONG_CODE_LINE = ("total = " + " + ".join(f"weight_{n} * value_{n}" for n in range(30)))[:300]
assert len(LONG_CODE_LINE) == 300
CODE = f"Add them up:\n\n```python\n{LONG_CODE_LINE}\nprint(total)\n```\n\nThat prints the sum."
LONG_WORD = (
    "Read <https://example.org/" + "a-very-long-path-segment-without-spaces-" * 8 + "end> or "
    + "supercalifragilisticexpialidocious" * 6 + " for details."
)  # fmt: skip
COLUMNS = 14
TABLE = "\n".join(
    [
        "Here is the comparison:",
        "",
        "| " + " | ".join(f"Column {n}" for n in range(COLUMNS)) + " |",
        "|" + "---|" * COLUMNS,
        *("| " + " | ".join(f"r{row}c{n}" for n in range(COLUMNS)) + " |" for row in range(3)),
    ]
)
LONG_ANSWER = "\n\n".join(
    f"Paragraph {n}: " + "This sentence explains the point in some more detail. " * 12
    for n in range(8)
)
# (question, candidate's answer, baseline's answer); which one is Answer A is the round's draw.
CONVERSATIONS = [
    ("How do I add up these weighted values?", CODE, "Yes."),
    ("Where can I read more?", LONG_WORD, TABLE),
    ("Explain this at length, please.", LONG_ANSWER, "No."),
    ("Compare the options in a table.", TABLE, LONG_ANSWER),
]
ITEMS = len(CONVERSATIONS)

# Scrolls the given target to the top, middle and bottom of the window and asks the browser what
# is drawn at its centre: the target itself, or whatever covers it. Targets are each answer's
# heading and the last character of its text (found after scrolling any sideways-scrolling
# block, a wide table or code block, to its end).
COVERED_PARTS = """
() => {
  const problems = [];
  const describe = (element) => {
    const owner = element.closest("form, article, section, details, main") || element;
    return `${element.tagName.toLowerCase()} in ${owner.tagName.toLowerCase()}.${owner.className}`;
  };
  const lastCharacter = (root) => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
      acceptNode: (node) => node.data.trim() ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_SKIP,
    });
    let last = null;
    while (walker.nextNode()) last = walker.currentNode;
    const end = last.data.trimEnd().length;
    const range = document.createRange();
    range.setStart(last, end - 1);
    range.setEnd(last, end);
    return [range, last.parentElement];
  };
  for (const answer of document.querySelectorAll("#task article.answer")) {
    const name = answer.getAttribute("aria-label");
    const heading = answer.querySelector("h2");
    const [range, owner] = lastCharacter(answer.querySelector(".text"));
    for (let element = owner; element !== answer; element = element.parentElement) {
      if (element.scrollWidth > element.clientWidth) element.scrollLeft = element.scrollWidth;
    }
    const targets = [
      [`the "${name}" heading`, heading, () => heading.getBoundingClientRect()],
      [`the end of ${name}`, owner, () => range.getBoundingClientRect()],
    ];
    for (const [label, element, rectOf] of targets) {
      for (const block of ["start", "center", "end"]) {
        const before = rectOf();
        const offset = {
          start: before.top,
          center: before.top + before.height / 2 - innerHeight / 2,
          end: before.bottom - innerHeight,
        }[block];
        window.scrollTo({ top: scrollY + offset, behavior: "instant" });
        const rect = rectOf();
        const x = rect.left + rect.width / 2;
        const hit = document.elementFromPoint(x, rect.top + rect.height / 2);
        if (!hit || !element.contains(hit)) {
          const what = hit ? describe(hit) : "nothing (it is off screen)";
          problems.push(`${label}, scrolled to the ${block} of the window, shows ${what}`);
        }
      }
    }
  }
  return problems;
}
"""

# Where the choice bar and the answers are, in page coordinates, with the page scrolled to its
# top, to each end of each answer and to the bar; a bar that sticks to the window moves with it.
BAR_OVERLAPS = """
() => {
  const bar = document.querySelector("#task .choices");
  const answers = [...document.querySelectorAll("#task article.answer")];
  const inPage = (element) => {
    const { top, bottom, left, right } = element.getBoundingClientRect();
    return { top: top + scrollY, bottom: bottom + scrollY, left: left + scrollX,
             right: right + scrollX };
  };
  const reveal = (element, block) => () => element.scrollIntoView({ block, behavior: "instant" });
  const positions = [["the top of the page", () => window.scrollTo(0, 0)]];
  for (const answer of answers) {
    const name = answer.getAttribute("aria-label");
    positions.push([`the start of ${name}`, reveal(answer, "start")]);
    positions.push([`the end of ${name}`, reveal(answer, "end")]);
  }
  positions.push(["the choice bar", reveal(bar, "end")]);
  const overlaps = [];
  for (const [where, scroll] of positions) {
    scroll();
    const b = inPage(bar);
    for (const answer of answers) {
      const a = inPage(answer);
      if (b.left < a.right && a.left < b.right && b.top < a.bottom && a.top < b.bottom) {
        const name = answer.getAttribute("aria-label");
        overlaps.push(`scrolled to ${where}, the choice bar overlaps ${name}`);
      }
    }
  }
  return overlaps;
}
"""

LAYOUT = """
() => {
  const box = (element) => {
    const { left, right, top, bottom, width } = element.getBoundingClientRect();
    return { left, right, top, bottom, width };
  };
  const scrolling = (element) => ({
    tag: element.tagName.toLowerCase(),
    box: box(element),
    scrollWidth: element.scrollWidth,
    clientWidth: element.clientWidth,
    overflowX: getComputedStyle(element).overflowX,
  });
  const answers = [...document.querySelectorAll("#task article.answer")];
  return {
    innerWidth: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    main: box(document.querySelector("main.crowd")),
    row: box(document.querySelector("#task .answers")),
    answers: answers.map((answer) => ({
      ...scrolling(answer),
      blocks: [...answer.querySelectorAll("pre, table")].map(scrolling),
    })),
    buttons: [...document.querySelectorAll("#task .choices button")].map(box),
  };
}
"""

FOCUS_IN_TASK = """
() => {
  const task = document.getElementById("task");
  const focused = document.activeElement;
  return Boolean(task && focused && focused !== document.body && task.contains(focused));
}
"""


def make_layout_round(width: int):
    """A round whose four items hold every kind of answer that once broke the layout."""
    project = Project.objects.create(name=f"layout lab {width}")
    prompt_set = PromptSet.objects.create(project=project, name="awkward answers")
    candidate = LanguageModel.objects.create(project=project, name="candidate")
    baseline = LanguageModel.objects.create(project=project, name="baseline")
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
        items_per_worker=ITEMS,
        seed=1234,
    )


def assert_item_fits(layout: dict, screen: Screen) -> None:
    # No sideways scrolling of the page: not in the window Chromium lays out, nor on the screen.
    assert layout["scrollWidth"] <= layout["innerWidth"] <= screen.width, layout
    main, row = layout["main"], layout["row"]
    answer_a, answer_b = layout["answers"]
    for answer in (answer_a, answer_b):
        box = answer["box"]
        assert row["left"] - 0.5 <= box["left"] and box["right"] <= row["right"] + 0.5, layout
        assert main["left"] <= box["left"] and box["right"] <= main["right"], layout
        # Nothing inside an answer sticks out of it...
        assert answer["scrollWidth"] <= answer["clientWidth"], answer
        for block in answer["blocks"]:
            inner = block["box"]
            assert box["left"] <= inner["left"] and inner["right"] <= box["right"], block
            # ...a code block or table wider than the answer scrolls inside itself.
            assert block["scrollWidth"] > block["clientWidth"], block
            assert block["overflowX"] in ("auto", "scroll"), block
    a, b = answer_a["box"], answer_b["box"]
    if screen.width >= BREAKPOINT:
        assert abs(a["width"] - b["width"]) <= 1, (a, b)
        assert abs(a["top"] - b["top"]) <= 1 and a["right"] <= b["left"], (a, b)
    else:
        assert b["top"] >= a["bottom"], (a, b)
        assert abs(a["width"] - row["width"]) <= 1 and abs(b["width"] - row["width"]) <= 1
    for button in layout["buttons"]:
        assert button["left"] >= 0 and button["right"] <= layout["innerWidth"], button
        if screen.is_phone:
            assert button["bottom"] - button["top"] >= MIN_TOUCH_TARGET, button


@pytest.mark.parametrize("screen", SCREENS, ids=lambda screen: f"{screen.width}x{screen.height}")
def test_it_shows_both_answers_whole_and_uncovered_on_any_screen(
    live_server, screen_page, screen_page_errors, screen, screenshot
):
    page = screen_page
    round_ = make_layout_round(screen.width)
    page.goto(f"{live_server.url}/c/{round_.crowd_token}/?worker_id=screen-{screen.width}")
    page.get_by_role("button", name="Start").click()
    progress = page.locator("#task .progress-text")
    expect(progress).to_have_text(f"1 of {ITEMS}")
    page.wait_for_load_state("load")
    page.wait_for_function("() => window.htmx !== undefined")

    seen_blocks = set()
    for position in range(1, ITEMS + 1):
        expect(progress).to_have_text(f"{position} of {ITEMS}")
        expect(page.locator("#task .answer h2")).to_have_text(["Answer A", "Answer B"])
        layout = page.evaluate(LAYOUT)
        assert_item_fits(layout, screen)
        seen_blocks |= {block["tag"] for answer in layout["answers"] for block in answer["blocks"]}
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, f"crowd-layout-{screen.width}x{screen.height}-item-{position}")
        assert page.evaluate(COVERED_PARTS) == []
        assert page.evaluate(BAR_OVERLAPS) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= screen.width

        choice = ("Answer A", "Answer B", "Neither")[position % 3]
        page.locator("#task .choices button", has_text=choice).click()
        if position < ITEMS:
            expect(progress).to_have_text(f"{position + 1} of {ITEMS}")
            expect(page.get_by_role("status")).to_contain_text(f"{position + 1} of {ITEMS}")
        else:
            expect(page.locator("#task .complete #completion-code")).not_to_be_empty()
        # The answered item is gone with the focus on it: the focus moves into the new one.
        page.wait_for_function(FOCUS_IN_TASK, timeout=2_000)

    assert seen_blocks == {"pre", "table"}
    assert screen_page_errors == []


def test_choice_buttons_are_named_after_the_choice_and_keep_their_keys(live_server, page):
    round_ = make_layout_round(1200)
    page.goto(f"{live_server.url}/c/{round_.crowd_token}/?worker_id=reader-1")
    page.get_by_role("button", name="Start").click()
    for key, name in (
        ("1", "Answer A is significantly better"),
        ("2", "Answer B is significantly better"),
        ("3", "Neither is significantly better"),
    ):
        button = page.get_by_role("button", name=name, exact=True)
        expect(button).to_have_attribute("data-key", key)
        expect(button).to_have_attribute("aria-keyshortcuts", key)
