"""A researcher in a real Chromium: log in, see the rounds, open one, annotate as an author."""

import json
import re

import pytest

from annotation.imports.ratings import ratings_import
from annotation.models import Annotation, Annotator
from inference.judge.models import JudgeRun
from inference.judge.services import judge_create
from tests.factories import make_project, make_round, make_user

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-battery-7"


def test_researcher_logs_in_opens_a_round_and_annotates_as_author(
    live_server, page, page_errors, screenshot
):
    user = make_user("ada", PASSWORD)
    project = make_project("browser lab", user)
    round_ = make_round(project=project, name="Pilot round in the browser")

    page.goto(f"{live_server.url}/rounds/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/rounds/$"))
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(f"{live_server.url}/rounds/")
    table = page.locator("table.rounds")
    expect(table).to_contain_text(round_.name)
    bar = table.locator('progress[aria-label="Progress against baseline"]')
    expect(bar).to_be_visible()
    expect(bar).to_have_attribute("max", "10")
    expect(bar).to_have_attribute("value", "0")
    screenshot(page, "rounds")

    page.get_by_role("link", name=round_.name).click()
    expect(page).to_have_url(f"{live_server.url}/rounds/{round_.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(round_.name)
    link_box = page.get_by_label("Crowd link")
    expect(link_box).to_have_value(re.compile(re.escape(f"/c/{round_.crowd_token}/")))
    screenshot(page, "round-detail")

    page.get_by_role("button", name="Annotate as author").click()
    expect(page.get_by_role("heading", name="Answer A")).to_be_visible()
    expect(page.get_by_role("heading", name="Answer B")).to_be_visible()
    expect(page.locator("#task .progress-text")).to_have_text("1 of 10")
    page.wait_for_load_state("load")
    page.wait_for_function("() => window.htmx !== undefined")
    page.evaluate("window.__marker = 42")

    page.get_by_role("button", name="Neither is significantly better").click()
    expect(page.locator("#task .progress-text")).to_have_text("2 of 10")
    assert page.evaluate("window.__marker") == 42  # swapped in place by htmx
    assert page_errors == []

    annotation = Annotation.objects.select_related("annotator").get(item__round=round_)
    assert annotation.annotator.kind == Annotator.Kind.AUTHOR
    assert annotation.annotator.name == "ada"
    assert annotation.annotator.user_id == user.pk
    assert annotation.shown_choice == Annotation.ShownChoice.NEITHER
    assert annotation.choice == Annotation.Choice.TIE


def test_a_live_page_stops_polling_once_nothing_runs(live_server, page, page_errors):
    user = make_user("grace", PASSWORD)
    round_ = make_round(project=make_project("polling lab", user), prompts=2)
    judge = judge_create(
        project=round_.project, name="idle-judge", base_url="http://127.0.0.1:9/v1", api_key_env=""
    )
    run = JudgeRun.objects.create(round=round_, judge=judge, status=JudgeRun.Status.RUNNING)
    judges_url = f"/inference/rounds/{round_.pk}/judges/"
    polls: list[str] = []
    page.on(
        "request",
        lambda request: (
            polls.append(request.url)
            if request.headers.get("hx-request") and judges_url in request.url
            else None
        ),
    )

    page.goto(f"{live_server.url}/accounts/login/?next={judges_url}")
    page.get_by_label("Username").fill("grace")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#judge-runs")).to_contain_text("idle-judge")
    page.wait_for_timeout(3_500)
    assert len(polls) >= 1  # Polls every 3 s while the run is running.

    JudgeRun.objects.filter(pk=run.pk).update(status=JudgeRun.Status.DONE)
    expect(page.locator("#judge-runs .status")).to_have_text("Done", timeout=5_000)
    settled = len(polls)
    page.wait_for_timeout(7_000)  # Two more 3 s periods: an idle page asks for nothing.
    assert len(polls) == settled
    assert page_errors == []


@pytest.mark.parametrize("width", [390, 1280])
def test_the_ratings_page_shows_its_tables_and_figure_within_the_screen(
    live_server, page, page_errors, screenshot, width
):
    user = make_user("ratings", PASSWORD)
    round_ = make_round(project=make_project("ratings lab", user), prompts=3, candidate="a" * 60)
    records = [
        {"prompt_id": str(p), "model": model, "score": score, "annotator": who}
        for who, scores in {"ann": [5, 4, 2], "bob": [5, 3, 2]}.items()
        for model in ("a" * 60, "baseline")
        for p, score in enumerate(scores)
    ]
    raw = "\n".join(json.dumps(r) for r in records).encode()
    ratings_import(round_=round_, raw=raw, file="scores.jsonl", scale="helpfulness_1_6")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("ratings")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/rounds/{round_.pk}/ratings/")
    expect(page.get_by_role("heading", name="author: Helpfulness 1-6")).to_be_visible()
    expect(page.locator("#rating-agreement")).to_contain_text("within author")
    figure = page.get_by_alt_text("Figure of author: Helpfulness 1-6")
    expect(figure).to_be_visible()
    loaded = "img => img.complete && img.naturalWidth > 0"
    page.wait_for_function(loaded, arg=figure.element_handle())
    box = figure.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 1
    # A 60-character model name in the headings and links breaks rather than widening the page.
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width
    screenshot(page, f"ratings-{width}")
    assert page_errors == []
