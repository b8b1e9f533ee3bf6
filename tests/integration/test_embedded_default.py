"""The embedded default as ``make demo`` runs it: ``hub_config/jupyterhub_config.py``
unchanged, only its ports and ``var/`` directory moved (random free ports, a temporary
directory), with the real proxy and the spaces service managed by the hub.
"""

from __future__ import annotations

import html
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from sqlalchemy import select

from jupyterhub_spaces import orm
from jupyterhub_spaces.store import Store

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "hub_config" / "jupyterhub_config.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedHub:
    """``jupyterhub -f hub_config/jupyterhub_config.py`` in a temporary var directory."""

    def __init__(self, var: Path):
        self.var = var
        self.url = f"http://127.0.0.1:{free_port()}"
        self.ports = dict(hub=free_port(), proxy=free_port(), service=free_port())
        self.log_path = var.parent / f"{var.name}-jupyterhub.log"
        self.proc = None

    def start(self, timeout=120):
        env = dict(os.environ, SPACES_VAR_DIR=str(self.var), SPACES_SERVICE_PORT=str(self.ports["service"]))
        # the hub finds jupyterhub-singleuser and the service next to its Python
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jupyterhub",
                    "-f",
                    str(CONFIG),
                    f"--JupyterHub.bind_url={self.url}",
                    f"--JupyterHub.hub_port={self.ports['hub']}",
                    f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{self.ports['proxy']}",
                ],
                cwd=self.var,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"jupyterhub exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the embedded hub did not come up:\n{self.log()[-4000:]}")
            try:
                # the spaces service answers through the proxy
                r = requests.get(f"{self.url}/services/spaces/api/v1/", timeout=2)
                if r.status_code == 401 and "json" in r.headers.get("Content-Type", ""):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        # the proxy may outlive the hub (cleanup_servers=False keeps sessions, not it)
        pid_file = self.var / "proxy.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (ValueError, ProcessLookupError):
                pass
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def login(self, user: str, password: str) -> tuple[requests.Session, requests.Response]:
        s = requests.Session()
        r = s.get(f"{self.url}/hub/login", timeout=30)
        xsrf = re.search(r'name="_xsrf"\s+value="([^"]+)"', r.text)
        data = {"username": user, "password": password}
        if xsrf:
            data["_xsrf"] = xsrf.group(1)
        r = s.post(f"{self.url}/hub/login", data=data, timeout=60)
        return s, r


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    var = tmp_path_factory.mktemp("embedded") / "var"
    var.mkdir()
    hub = EmbeddedHub(var)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def demo_password(hub) -> str:
    return (hub.var / "demo-password").read_text().strip()


def test_password_is_printed_at_start(embedded):
    password = demo_password(embedded)
    assert len(password) >= 16
    assert f"password: {password}" in embedded.log()


@pytest.mark.parametrize(
    "user, org, admin", [("alice", "northwind", False), ("dave", "contoso", False), ("admin", "northwind", True)]
)
def test_demo_user_lands_on_the_spaces_app(embedded, user, org, admin):
    s, r = embedded.login(user, demo_password(embedded))
    assert urlparse(r.url).path == "/services/spaces/", [h.url for h in r.history] + [r.url]
    # the service knows them through the hub's OAuth, and sees the admin role
    me = s.get(f"{embedded.url}/services/spaces/login?next=/services/spaces/api/v1/me", timeout=30)
    assert me.status_code == 200, me.text[:300]
    assert (me.json()["name"], me.json()["org"], me.json()["admin"]) == (user, org, admin)
    # and the page they landed on is the Spaces app
    assert r.status_code == 200, r.text[:300]


@pytest.mark.parametrize(
    "user, password",
    [("alice", "not-the-password"), ("mallory", None), ("alice", "")],
    ids=["wrong-password", "unknown-user", "empty-password"],
)
def test_login_refused(embedded, user, password):
    s, r = embedded.login(user, demo_password(embedded) if password is None else password)
    assert urlparse(r.url).path == "/hub/login"
    assert "Invalid username or password" in html.unescape(r.text)
    assert s.get(f"{embedded.url}/hub/home", allow_redirects=False, timeout=30).status_code == 302


def test_first_start_loaded_the_demo_catalog(embedded):
    store = Store(f"sqlite:///{embedded.var / 'spaces.sqlite'}")
    try:
        with store.transaction() as db:
            slugs = set(db.scalars(select(orm.Space.slug)))
            users = {u.name: u.org.name for u in db.scalars(select(orm.User))}
    finally:
        store.dispose()
    assert {"retail-forecasting", "store-footprint", "weather-trends"} <= slugs
    assert users["alice"] == "northwind" and users["dave"] == "contoso"
    assert (embedded.var / "data" / "retail-sales" / "stores" / "stores.csv").exists()
    assert (embedded.var / "sources.sqlite").exists()


def test_restart_keeps_the_password(embedded):
    before = demo_password(embedded)
    embedded.stop()
    embedded.start()
    assert demo_password(embedded) == before
    s, r = embedded.login("bob", before)
    assert urlparse(r.url).path.startswith("/services/spaces/")
