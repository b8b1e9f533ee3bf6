"""The embedded default as ``make demo`` runs it, for tests: ``jupyterhub -f
hub_config/jupyterhub_config.py`` with only its ports and ``var/`` directory moved
(random free ports, a temporary directory), the real proxy and the spaces service
managed by the hub. Sessions end with the hub.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "hub_config" / "jupyterhub_config.py"


def wait_for(check, timeout: float = 300, every: float = 2.0, what: str = ""):
    """``check()``'s first true value, asked every ``every`` seconds; an
    AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoHub:
    """``jupyterhub -f hub_config/jupyterhub_config.py`` with its ports and ``var/``
    moved, nothing else changed."""

    def __init__(self, var: Path):
        self.var = var
        self.url = f"http://127.0.0.1:{free_port()}"
        self.ports = {"hub": free_port(), "proxy": free_port(), "service": free_port(), "airflow": free_port(),
                      "airflow_ui": free_port()}
        self.log_path = var.parent / "jupyterhub.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> None:
        env = dict(os.environ, SPACES_VAR_DIR=str(self.var), SPACES_SERVICE_PORT=str(self.ports["service"]),
                   SPACES_AIRFLOW_PORT=str(self.ports["airflow"]),
                   SPACES_AIRFLOW_UI_PORT=str(self.ports["airflow_ui"]))
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "jupyterhub", "-f", str(CONFIG),
                    f"--JupyterHub.bind_url={self.url}",
                    f"--JupyterHub.hub_port={self.ports['hub']}",
                    f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{self.ports['proxy']}",
                    # sessions end with the test hub
                    "--JupyterHub.cleanup_servers=True",
                ],
                cwd=self.var, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyterhub exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the demo hub did not come up:\n{self.log()[-4000:]}")
            try:
                r = requests.get(f"{self.url}/services/spaces/api/v1/", timeout=2)
                if r.status_code == 401 and "json" in r.headers.get("Content-Type", ""):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)

    @property
    def password(self) -> str:
        return (self.var / "demo-password").read_text().strip()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        pid_file = self.var / "proxy.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (ValueError, ProcessLookupError):
                pass
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def login(self, user: str, password: str) -> tuple[requests.Session, requests.Response]:
        """Log in through the hub's login form, as a browser without JavaScript."""
        s = requests.Session()
        r = s.get(f"{self.url}/hub/login", timeout=30)
        xsrf = re.search(r'name="_xsrf"\s+value="([^"]+)"', r.text)
        data = {"username": user, "password": password}
        if xsrf:
            data["_xsrf"] = xsrf.group(1)
        r = s.post(f"{self.url}/hub/login", data=data, timeout=60)
        return s, r


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory):
    """A running :class:`DemoHub` for the test module, stopped (with its sessions)
    afterwards."""
    var = tmp_path_factory.mktemp("demo-hub") / "var"
    var.mkdir()
    hub = DemoHub(var)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()
