"""Browser fixtures: Debian's Chromium driven by Playwright against the embedded default
(``hub_config/jupyterhub_config.py`` as ``make demo`` runs it: demo login, the spaces
service, local space sessions), on random free ports in a temporary ``var/``.

Fixtures
--------
``chromium`` (module)
    A headless Chromium from ``$SPACES_CHROMIUM`` (default ``/usr/bin/chromium``); the
    tests skip when it is missing. Playwright never downloads a browser here. Module
    scope: Playwright's sync API allows one instance at a time, and other modules
    start their own.
``demo_hub`` (module)
    A running :class:`DemoHub`: ``url``, ``password`` (the demo password), ``var``,
    ``log()``. One hub per test module, stopped (with its sessions) afterwards.
``new_page`` (function)
    ``new_page(width=1280, height=800)``: a page in a fresh browser context (its own
    cookies); JavaScript errors on the page fail the test.
``login`` (function)
    ``login(user, width=1280, height=800)``: a fresh page logged in through the hub's
    login page as a demo user; it is on the Spaces app afterwards.
``shot`` (function)
    ``shot(page, name)`` saves a full-page screenshot to
    ``test-artifacts/screenshots/<name>.png``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from demo_hub import demo_hub  # noqa: E402,F401  (the fixture)

CHROMIUM = os.environ.get("SPACES_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def chromium():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium):
    contexts = []
    errors: list[str] = []

    def make(width: int = 1280, height: int = 800):
        context = chromium.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(30_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, "JavaScript errors on the page:\n" + "\n".join(errors)


@pytest.fixture
def login(demo_hub, new_page):
    def do(user: str, width: int = 1280, height: int = 800):
        page = new_page(width, height)
        page.goto(f"{demo_hub.url}/hub/login")
        page.fill("#username_input", user)
        page.fill("#password_input", demo_hub.password)
        page.click("#login_submit")
        page.wait_for_url("**/services/spaces/**")
        page.wait_for_selector("#view h1")
        return page

    return do


@pytest.fixture
def shot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
