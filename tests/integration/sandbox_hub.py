"""A real JupyterHub (with the real configurable-http-proxy) whose users' servers are
the Sandbox gateway, and a scripted guacd in a background thread, for the sandbox's
authentication and browser tests.

The gateway runs with ``--no-desktop``: guacd is the scripted peer, so these tests need
neither guacd nor a desktop. The spaces service is not involved: only the gateway's
hub authentication is under test.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import requests

from jupyterhub_spaces.sandbox.scripted_guacd import PeerSession, ScriptedGuacd

REPO = Path(__file__).resolve().parents[2]
CHP = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
CLIENT_JS = REPO / "jupyterhub_spaces/sandbox/static/vendor/guacamole-common.js"
PASSWORD = "sandbox-test-password"
OWNER, OTHER, ADMIN = "bob", "alice", "admin"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThreadedGuacd:
    """:class:`ScriptedGuacd` on its own event loop thread, usable from sync tests."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.peer = self.run(ScriptedGuacd().start())

    @property
    def port(self) -> int:
        return self.peer.port

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def next_session(self, timeout: float = 30) -> PeerSession:
        return self.run(asyncio.wait_for(self.peer.sessions.get(), timeout), timeout + 5)

    def live_session(self, timeout: float = 30) -> PeerSession:
        """The newest connection that finished its handshake and is still open (a page
        that was left closes its tunnel, and so its connection)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = [s for s in list(self.peer.all_sessions) if s.ready.is_set() and not s.closed.is_set()]
            if len(live) == 1:
                return live[0]
            time.sleep(0.1)
        raise TimeoutError(f"expected one open guacd connection, have {len(live)}")

    def send(self, session: PeerSession, *elements) -> None:
        self.loop.call_soon_threadsafe(session.send, *elements)

    def wait_for(self, session: PeerSession, opcode: str, timeout: float = 30, predicate=None):
        return self.run(session.wait_for(opcode, timeout, predicate), timeout + 5)

    def close(self):
        self.run(self.peer.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class SandboxHub:
    """JupyterHub + proxy on random ports; every user's server is the sandbox gateway."""

    def __init__(self, workdir: Path, guacd_port: int, desktop: bool = False):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token = secrets.token_hex(32)
        self.guacd_port = guacd_port
        #: start the real desktop (Xvnc, openbox, JupyterLab, kiosk) in each server
        self.desktop = desktop
        self.proc = None
        self.log_path = self.workdir / "jupyterhub.log"

    def write_config(self) -> Path:
        if not CHP.exists():
            subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=REPO, check=True)
        if not CLIENT_JS.exists():
            subprocess.run([str(REPO / "jupyterhub_spaces/sandbox/client/build.sh")], check=True)
        cmd = [
            sys.executable, "-m", "jupyterhub_spaces.sandbox.gateway", "--debug",
            *([] if self.desktop else ["--no-desktop"]),
            "--SandboxGateway.space=Sales sandbox", "--SandboxGateway.activity_interval=1",
            "--SandboxGateway.vnc_port=5999", "--SandboxGateway.vnc_password=vnc-secret",
            "--SandboxSettings.guacd_host=127.0.0.1", f"--SandboxSettings.guacd_port={self.guacd_port}",
        ]
        cfg = f"""
        c = get_config()  # noqa
        c.JupyterHub.ip = "127.0.0.1"
        c.JupyterHub.port = {self.port}
        c.JupyterHub.hub_ip = "127.0.0.1"
        c.JupyterHub.hub_port = {free_port()}
        c.JupyterHub.db_url = "sqlite:///" + {str(self.workdir / 'jupyterhub.sqlite')!r}
        c.JupyterHub.cookie_secret = bytes.fromhex({secrets.token_hex(32)!r})
        c.JupyterHub.pid_file = {str(self.workdir / 'jupyterhub.pid')!r}
        c.JupyterHub.cleanup_servers = True
        c.ConfigurableHTTPProxy.command = [{str(CHP)!r}]
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
        c.ConfigurableHTTPProxy.auth_token = {secrets.token_hex(32)!r}
        c.ConfigurableHTTPProxy.pid_file = {str(self.workdir / 'proxy.pid')!r}
        c.JupyterHub.authenticator_class = "dummy"
        c.DummyAuthenticator.password = {PASSWORD!r}
        c.Authenticator.allowed_users = {{{OWNER!r}, {OTHER!r}}}
        c.Authenticator.admin_users = {{{ADMIN!r}}}
        c.JupyterHub.spawner_class = "simple"
        c.Spawner.cmd = {cmd!r}
        c.Spawner.default_url = "/lab"
        c.Spawner.http_timeout = 60
        c.JupyterHub.services = [{{"name": "test-admin", "api_token": {self.admin_token!r}}}]
        c.JupyterHub.load_roles = [{{"name": "admin", "services": ["test-admin"]}}]
        """
        path = self.workdir / "jupyterhub_config.py"
        path.write_text(textwrap.dedent(cfg))
        return path

    def start(self, timeout: float = 90):
        config = self.write_config()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyterhub exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"jupyterhub did not start:\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/hub/api", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def api(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(
            method, f"{self.url}/hub/api{path}",
            headers={"Authorization": f"token {self.admin_token}"}, timeout=30, **kw,
        )

    def token(self, user: str) -> str:
        r = self.api("POST", f"/users/{user}/tokens", json={"expires_in": 3600, "note": "sandbox test"})
        r.raise_for_status()
        return r.json()["token"]

    def start_server(self, user: str, timeout: float = 90) -> None:
        r = self.api("POST", f"/users/{user}/server")
        if r.status_code not in (201, 202, 400):
            raise RuntimeError(f"starting {user}'s server: {r.status_code} {r.text}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.api("GET", f"/users/{user}").json().get("servers", {}).get("", {})
            if server.get("ready"):
                return
            time.sleep(0.3)
        raise TimeoutError(f"{user}'s server did not start:\n{self.log_tail()}")

    def login(self, user: str) -> requests.Session:
        """A requests session logged in to the hub as ``user`` (login form)."""
        s = requests.Session()
        r = s.get(self.url + "/hub/login", timeout=30)
        m = re.search(r'name="_xsrf"\s+value="([^"]+)"', r.text)
        data = {"username": user, "password": PASSWORD}
        if m:
            data["_xsrf"] = m.group(1)
        r = s.post(self.url + "/hub/login", data=data, allow_redirects=False, timeout=30)
        if r.status_code != 302:
            raise RuntimeError(f"login of {user} failed: {r.status_code}")
        return s


# Fixtures for test modules that import them: one scripted guacd and one hub, whose
# owner's server (the gateway) is started, per module.


@pytest.fixture(scope="module")
def guacd():
    g = ThreadedGuacd()
    yield g
    g.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory, guacd):
    h = SandboxHub(tmp_path_factory.mktemp("sandbox-hub"), guacd.port)
    h.start()
    try:
        h.start_server(OWNER)
        yield h
    finally:
        h.stop()
