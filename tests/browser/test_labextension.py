"""The built JupyterLab extension: installed where JupyterLab finds prebuilt
extensions, enabled, and activating in a real JupyterLab in Chromium (no hub here:
the panel says it cannot reach the spaces service, which proves its code ran).

The extension is built by ``scripts/setup.d/70-labextension.sh`` (``make test`` runs it).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow

NAME = "@jupyterhub-spaces/jupyterlab-spaces"
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def test_built_extension_is_built_from_these_sources():
    """A changed source of the extension (its code, styles, tests, dependencies) must
    rebuild it: the build records the hash of its sources, the setup step rebuilds
    whenever the hash of the sources now differs."""
    script = REPO / "scripts" / "setup.d" / "70-labextension.sh"
    now = subprocess.run([str(script), "--sources-hash"], capture_output=True, text=True, check=True).stdout.strip()
    built = REPO / "jupyterhub_spaces" / "labextension" / ".sources-hash"
    assert built.exists(), "the extension is not built: run scripts/setup.d/70-labextension.sh"
    assert built.read_text().strip() == now, (
        "the built extension is older than its sources: run scripts/setup.d/70-labextension.sh"
    )


def test_extension_is_installed_and_enabled():
    out = subprocess.run(
        [str(BIN / "jupyter"), "labextension", "list"], capture_output=True, text=True, timeout=120
    )
    text = out.stdout + out.stderr
    line = next((l for l in text.splitlines() if NAME in l), None)
    assert line, f"{NAME} is not installed: run scripts/setup.d/70-labextension.sh\n{text}"
    assert "enabled" in line and "OK" in line, line
    assert "jupyterhub-spaces" in line  # shipped by the Python package


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / "config"), JUPYTER_RUNTIME_DIR=str(root / "runtime"))
    log = open(root / "lab.log", "wb")
    proc = subprocess.Popen(
        [str(BIN / "jupyter-lab"), "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited: {(root / 'lab.log').read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/api/status?token={token}", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("jupyter lab did not start")
        time.sleep(0.5)
    try:
        yield url, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_panel_activates_in_jupyterlab(lab, new_page, shot):
    url, token = lab
    page = new_page()
    page.goto(f"{url}/lab?token={token}")
    # the plugin added its panel to the left area
    page.wait_for_selector("#jupyterhub-spaces-panel", state="attached", timeout=120_000)
    page.click("li[data-id='jupyterhub-spaces-panel']")
    panel = page.locator("#jupyterhub-spaces-panel")
    assert panel.locator("h2").inner_text() == "Spaces"
    # outside JupyterHub there is no service to reach: the panel says so
    panel.locator(".jp-SpacesPanel-status.jp-mod-error").wait_for(timeout=60_000)
    assert "Spaces" in panel.locator(".jp-SpacesPanel-status").inner_text()
    shot(page, "20-labextension-without-hub")
