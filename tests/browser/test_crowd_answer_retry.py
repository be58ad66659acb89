"""A crowd answer that fails on the way is sent again once, in a real Chromium, and recorded once.

The faults are real ones at the browser's network layer (Playwright's request routing): a
request that never reaches the server, and one whose answer the server recorded but whose
response never came back.
"""

import time

import pytest

from annotation.models import Annotation
from tests.browser.test_crowd_worker import make_blinded_round, wait_for_scripts

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.browser

ANSWER_URL = "**/answer/"


def open_first_item(page, live_server, worker: str):
    round_ = make_blinded_round(f"retry lab {worker}")
    page.goto(f"{live_server.url}/c/{round_.crowd_token}/?worker_id={worker}")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#task .progress-text")).to_have_text("1 of 3")
    wait_for_scripts(page)
    return round_


def test_an_answer_whose_response_was_lost_is_sent_again_and_recorded_once(
    live_server, page, page_errors
):
    open_first_item(page, live_server, "lost-response")
    sent: list[str] = []

    def lose_first_response(route):
        sent.append(route.request.post_data or "")
        if len(sent) == 1:
            # The server gets and records the answer; the browser never hears back.
            route.fetch()
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(ANSWER_URL, lose_first_response)
    question = page.locator("#task .question .text").inner_text()
    page.get_by_role("button", name="Answer B is significantly better").click()

    expect(page.locator("#task .progress-text")).to_have_text("2 of 3")
    assert page.locator("#task .question .text").inner_text() != question
    assert len(sent) == 2
    # The same item, choice and CSRF token: a replay, which the server answers from its record.
    assert "choice=B" in sent[1]
    assert sorted(sent[0].split("&")) == sorted(sent[1].split("&"))
    answers = list(Annotation.objects.filter(annotator__name="lost-response"))
    assert [a.shown_choice for a in answers] == ["B"]
    assert page_errors == []


def test_an_answer_that_never_arrived_is_sent_again_after_a_second(live_server, page, page_errors):
    open_first_item(page, live_server, "no-network")
    sent: list[float] = []

    def fail_first(route):
        sent.append(time.monotonic())
        if len(sent) == 1:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route(ANSWER_URL, fail_first)
    page.keyboard.press("1")

    expect(page.locator("#task .progress-text")).to_have_text("2 of 3")
    assert len(sent) == 2
    assert sent[1] - sent[0] >= 0.8
    assert [a.shown_choice for a in Annotation.objects.filter(annotator__name="no-network")] == [
        "A"
    ]
    assert page_errors == []


def test_two_failures_show_a_message_and_a_button_that_sends_the_answer(
    live_server, page, page_errors, screenshot
):
    open_first_item(page, live_server, "two-failures")
    failures = {"left": 2}

    def fail_twice(route):
        if failures["left"]:
            failures["left"] -= 1
            route.abort("connectionrefused")
        else:
            route.continue_()

    page.route(ANSWER_URL, fail_twice)
    page.get_by_role("button", name="Neither is significantly better").click()

    notice = page.locator("#task .answer-notice")
    expect(notice).to_contain_text("could not be sent")
    expect(notice).to_have_attribute("role", "alert")
    retry = notice.get_by_role("button", name="Send my answer again")
    expect(retry).to_be_visible()
    screenshot(page, "crowd-answer-failed")
    # The item is still there, nothing is recorded, and the choices still work.
    expect(page.locator("#task .progress-text")).to_have_text("1 of 3")
    expect(page.locator("#task button[name='choice']").first).to_be_enabled()
    assert not Annotation.objects.filter(annotator__name="two-failures").exists()

    retry.click()

    expect(page.locator("#task .progress-text")).to_have_text("2 of 3")
    expect(page.locator("#task .answer-notice")).to_have_count(0)
    answers = list(Annotation.objects.filter(annotator__name="two-failures"))
    assert [a.shown_choice for a in answers] == ["N"]
    assert page_errors == []


def test_a_rate_limited_answer_shows_the_limit_and_keeps_the_item(
    live_server, page, page_errors, settings
):
    settings.CROWD_ANSWERS_PER_IP_PER_MINUTE = 1
    open_first_item(page, live_server, "limited")
    page.keyboard.press("1")
    expect(page.locator("#task .progress-text")).to_have_text("2 of 3")
    question = page.locator("#task .question .text").inner_text()

    page.keyboard.press("2")

    notice = page.locator("#task .answer-notice")
    expect(notice).to_contain_text("Too many answers were sent from your network")
    expect(page.locator("#task .progress-text")).to_have_text("2 of 3")
    assert page.locator("#task .question .text").inner_text() == question
    assert Annotation.objects.filter(annotator__name="limited").count() == 1
    assert page_errors == []
