"""A paid study in Chromium on a phone: the comprehension check, the items, the worker's own
code and the hand-off to the study; a second browser cannot take over the worker id; the
researcher sees the worker on the workers page."""

import pytest

from annotation.models import WorkerSession
from annotation.services.completion import completion_code_for
from tests.factories import make_project, make_round, make_user

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-battery-7"
PHONE = {"width": 390, "height": 844}


def test_a_worker_passes_the_check_answers_and_is_handed_back_with_their_code(
    live_server, browser, page_errors, screenshot
):
    user = make_user("ada", PASSWORD)
    round_ = make_round(prompts=2, items_per_worker=2, project=make_project("study", user))
    round_.screening = True
    round_.completion_url = f"{live_server.url}/healthz?cc={{code}}"
    round_.save()
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = phone.new_page()
    page.on("pageerror", lambda error: page_errors.append(str(error)))

    page.goto(f"{live_server.url}/c/{round_.crowd_token}/?PROLIFIC_PID=pid-42")
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("heading", name="Before you start: three questions")).to_be_visible()
    page.get_by_label("Read one question and two answers, and say which answer is better").check()
    page.get_by_label("Never: one answer is always better").check()
    page.get_by_label("Those of the person who wrote the question: imagine it is you").check()
    page.get_by_role("button", name="Check my answers").click()
    expect(page.get_by_role("alert")).to_contain_text("You have 1 more attempt")
    screenshot(page, "crowd-screening-retry")
    page.get_by_label("Read one question and two answers, and say which answer is better").check()
    page.get_by_label("When the two answers are about equally good (or equally bad)").check()
    page.get_by_label("Those of the person who wrote the question: imagine it is you").check()
    page.get_by_role("button", name="Check my answers").click()

    expect(page.get_by_role("heading", name="Practice 1 of 2")).to_be_visible()
    page.get_by_role("button", name="Answer B is significantly better").click()
    expect(page.locator(".feedback")).to_contain_text("Right.")
    page.get_by_role("link", name="Next practice item").click()
    page.get_by_role("button", name="Answer A is significantly better").click()
    expect(page.locator(".feedback")).to_contain_text("Not quite.")
    page.get_by_role("button", name="Start the study").click()

    expect(page.locator("#task .progress-text")).to_have_text("1 of 2")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.get_by_role("button", name="Answer A is significantly better").click()
    expect(page.locator("#task .progress-text")).to_have_text("2 of 2")
    with page.expect_navigation():
        page.get_by_role("button", name="Neither is significantly better").click()
    code = completion_code_for(round_, "pid-42")
    assert page.url == f"{live_server.url}/healthz?cc={code}"

    intruder = browser.new_context(viewport=PHONE).new_page()
    intruder.goto(f"{live_server.url}/c/{round_.crowd_token}/?PROLIFIC_PID=pid-42")
    intruder.get_by_role("button", name="Start").click()
    expect(intruder.get_by_role("alert")).to_contain_text("already started this study in another")
    assert WorkerSession.objects.count() == 1

    desk = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    desk.goto(f"{live_server.url}/accounts/login/?next=/rounds/{round_.pk}/workers/")
    desk.get_by_label("Username").fill("ada")
    desk.get_by_label("Password").fill(PASSWORD)
    desk.get_by_role("button", name="Log in").click()
    row = desk.locator("table.workers tr", has_text="pid-42")
    expect(row).to_contain_text("complete")
    expect(row).to_contain_text(code)
    expect(row).to_contain_text("2 / 2")
    screenshot(desk, "round-workers")
    assert page_errors == []
    phone.close()
