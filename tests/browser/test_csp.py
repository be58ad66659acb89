"""Every page under the Content-Security-Policy, in a real Chromium: nothing is blocked, and the
pages still work (htmx answers on the crowd page, Swagger UI on the API docs).

The browser reports each blocked script, style or request as a `securitypolicyviolation`
event and a console error; both are collected, across navigations, and must stay empty.
"""

import re

import pytest

from annotation.models import Annotation, Annotator, Item
from tests.factories import make_project, make_round, make_user

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-battery-7"
VIOLATION_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"} `
    + `at ${event.sourceFile}:${event.lineNumber} (${event.sample})`
  );
});
"""


@pytest.fixture
def csp_violations(page) -> list[str]:
    """Violations on `page` (events and console errors); request it before the first navigation."""
    violations: list[str] = []
    page.expose_binding("reportCspViolation", lambda source, text: violations.append(text))
    page.add_init_script(VIOLATION_LISTENER)

    def console(message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            violations.append(f"console: {message.text}")

    page.on("console", console)
    return violations


def open_page(page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.ok, (url, response and response.status)
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy, url
    assert "unsafe-inline" not in policy
    page.wait_for_load_state("load")


def annotate(round_, count: int) -> None:
    annotator = Annotator.objects.create(
        project=round_.project, kind=Annotator.Kind.AUTHOR, name="author"
    )
    for index, item in enumerate(Item.objects.filter(round=round_).order_by("pk")[:count]):
        choice = (Annotation.Choice.CANDIDATE, Annotation.Choice.BASELINE)[index % 2]
        Annotation.objects.create(
            item=item,
            annotator=annotator,
            choice=choice,
            shown_choice=Annotation.shown_for(choice, item.candidate_first),
            candidate_first=item.candidate_first,
        )


def test_research_pages_load_and_work_without_a_policy_violation(
    live_server, page, page_errors, csp_violations
):
    user = make_user("ada", PASSWORD)
    round_ = make_round(project=make_project("csp lab", user), name="CSP round", prompts=6)
    annotate(round_, 6)

    open_page(page, f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/rounds/$"))

    open_page(page, f"{live_server.url}/rounds/")
    expect(page.locator("table.rounds")).to_contain_text("CSP round")

    open_page(page, f"{live_server.url}/rounds/{round_.pk}/")
    link_box = page.get_by_label("Crowd link")
    link_box.click()
    # A click selects the whole link, for copying (static/research.js, no onclick attribute).
    selected = link_box.evaluate("box => box.value.slice(box.selectionStart, box.selectionEnd)")
    assert selected == link_box.input_value()

    open_page(page, f"{live_server.url}/rounds/{round_.pk}/report/")
    expect(page.get_by_role("img", name=re.compile("^Human preference"))).to_be_visible()

    for path in (
        "/rounds/new/",
        f"/rounds/{round_.pk}/workers/",
        "/imports/",
        f"/inference/rounds/{round_.pk}/judges/",
        f"/inference/rounds/{round_.pk}/generation/",
        "/inference/training/",
        "/inference/models/new/",
    ):
        open_page(page, live_server.url + path)

    open_page(page, f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("evalplatform API")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()

    assert csp_violations == []
    assert page_errors == []


def test_a_crowd_worker_answers_through_htmx_without_a_policy_violation(
    live_server, page, page_errors, csp_violations
):
    round_ = make_round(prompts=3)

    open_page(page, f"{live_server.url}/c/{round_.crowd_token}/?worker_id=csp-worker")
    page.get_by_role("button", name="Start").click()
    progress = page.locator("#task .progress-text")
    expect(progress).to_have_text("1 of 3")
    page.wait_for_function("() => window.htmx !== undefined")
    page.evaluate("window.__marker = 42")

    page.get_by_role("button", name="Neither is significantly better").click()
    expect(progress).to_have_text("2 of 3")
    assert page.evaluate("window.__marker") == 42
    page.keyboard.press("1")
    expect(progress).to_have_text("3 of 3")
    assert page.evaluate("window.__marker") == 42  # swapped in place by htmx, no page load

    assert Annotation.objects.filter(item__round=round_).count() == 2
    assert csp_violations == []
    assert page_errors == []
