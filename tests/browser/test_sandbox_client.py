"""The Sandbox client page in a real Chromium: logged in through the real hub, it
connects through the gateway's tunnel to a scripted guacd, draws what guacd sends,
sends typed keys, and never receives guacd's clipboard."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from sandbox_hub import OWNER, PASSWORD, guacd, hub  # noqa: E402,F401  (fixtures)

CHROMIUM = os.environ.get("SPACES_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"Chromium not found at {CHROMIUM} (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        yield b
        b.close()


PIXEL_JS = """([x, y]) => {
  const canvas = window.sandbox.display.getDefaultLayer().getCanvas();
  return Array.from(canvas.getContext('2d').getImageData(x, y, 1, 1).data);
}"""


def wait_for_pixel(page, xy, rgba, timeout=30):
    """Poll the display's canvas (the page's CSP forbids eval, so no wait_for_function
    with an expression)."""
    deadline = time.monotonic() + timeout
    while True:
        got = page.evaluate(PIXEL_JS, list(xy))
        if got == list(rgba):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"pixel {xy} is {got}, expected {rgba}")
        time.sleep(0.1)


def test_client_draws_types_and_gets_no_clipboard(hub, guacd, browser):
    page = browser.new_page(viewport={"width": 900, "height": 700})
    # log in straight into the sandbox page: one page load, so one tunnel
    page.goto(f"{hub.url}/hub/login?next=/user/{OWNER}/")
    page.fill("input[name=username]", OWNER)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(f"{hub.url}/user/{OWNER}/**")
    assert page.locator(".badge").inner_text() == "SANDBOX"
    page.wait_for_function("document.body.dataset.state === '2'", timeout=30000)
    session = guacd.live_session()
    # the page asked for the size of its screen area; the gateway passed it on
    width, height, _dpi = (int(v) for v in session.handshake["size"])
    assert 800 <= width <= 900 and 500 <= height <= 700

    # guacd draws a 200x100 blue rectangle
    guacd.send(session, "size", "0", "200", "100")
    guacd.send(session, "rect", "0", "0", "0", "200", "100")
    guacd.send(session, "cfill", "14", "0", "0", "128", "255", "255")
    guacd.send(session, "sync", "1000")
    wait_for_pixel(page, (10, 10), (0, 128, 255, 255))
    # the browser acknowledges the frame, as guacd expects, and shows it is connected
    guacd.wait_for(session, "sync", predicate=lambda i: i.args == ("1000",))
    page.wait_for_function("document.body.dataset.state === '3'", timeout=30000)
    assert page.locator("#status").inner_text() == "Connected"

    # a command typed in the browser reaches the desktop as key events
    page.locator("#screen").click()
    page.keyboard.type("ls")
    guacd.wait_for(session, "key", predicate=lambda i: i.args == ("108", "1"))
    guacd.wait_for(session, "key", predicate=lambda i: i.args == ("115", "0"))

    # text copied on the desktop: guacd offers it as a clipboard stream; the page never
    # hears of it, and the next frame still arrives
    page.evaluate(
        "() => { window.__clipboard = []; window.sandbox.client.onclipboard = (s, m) => { window.__clipboard.push(m); }; }"
    )
    guacd.send(session, "clipboard", "3", "text/plain")
    guacd.send(session, "blob", "3", "c2VjcmV0IHJvd3M=")
    guacd.send(session, "end", "3")
    guacd.send(session, "cfill", "14", "0", "255", "0", "0", "255")
    guacd.send(session, "sync", "2000")
    wait_for_pixel(page, (10, 10), (255, 0, 0, 255))
    assert page.evaluate("window.__clipboard") == []
    refused = guacd.wait_for(session, "ack", predicate=lambda i: i.args[0] == "3")
    assert refused.args[2] == "771"

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sandbox-client.png"))
    page.close()
