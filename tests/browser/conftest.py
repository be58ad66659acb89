"""Fixtures for the real-browser tests: one headless Debian Chromium per session, a page per test.

These tests drive /usr/bin/chromium through Playwright against pytest-django's live_server.
No browser is ever downloaded: when Debian's Chromium is missing, the tests are skipped.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Playwright's sync API keeps an asyncio event loop marked as running in the main thread from
# sync_playwright().start() until stop(), i.e. for the whole session once the session-scoped
# browser exists; Django's async-safety guard sees that loop and refuses every ORM call the
# tests make (SynchronousOnlyOperation), though the calls are plain synchronous ones. Set at
# import, not in a fixture, because tests that run after the browser tests see the loop too.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
NO_CHROMIUM = (
    f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium); "
    "the browser tests never download a browser"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(NO_CHROMIUM)
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright Python package is not installed"
    )
    playwright = sync_api.sync_playwright().start()
    try:
        # A Chromium that is installed but does not start is a failure, not a skip.
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
    except BaseException:
        playwright.stop()
        raise
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def page_errors(page) -> list[str]:
    """Uncaught JavaScript errors on `page`; request it before the first navigation."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


@pytest.fixture
def screenshot():
    """Save a full-page screenshot under $BROWSER_SCREENSHOTS when it is set; no-op otherwise."""
    directory = os.environ.get("BROWSER_SCREENSHOTS")

    def save(page, name: str) -> Path | None:
        if not directory:
            return None
        path = Path(directory) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


@pytest.fixture
def screen_page(browser, screen):
    """A page in a window of `screen`'s size; phones get mobile viewport handling and touch."""
    context = browser.new_context(
        viewport={"width": screen.width, "height": screen.height},
        is_mobile=screen.is_phone,
        has_touch=screen.is_phone,
    )
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def screen_page_errors(screen_page) -> list[str]:
    errors: list[str] = []
    screen_page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


@pytest.fixture(scope="session")
def chat_model(tmp_path_factory):
    """A tiny chat model with an end-of-turn token, for the pages where a model answers live."""
    pytest.importorskip("transformers", reason="the train extra (transformers) is not installed")
    from tests.support.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-chat"))
