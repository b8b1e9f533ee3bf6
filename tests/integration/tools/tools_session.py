"""A real session's Jupyter server (jupyter-server + jupyter-server-proxy + the spaces
tools extension) under a ``/user/<name>/<space>/`` prefix, with a token, on a random
port, started as a subprocess the way a spawner starts it."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from jupyterhub_spaces.tools.catalog import superset_venv
from jupyterhub_spaces.tools.part import JUPYTER_CONFIG_DIR

sys.path.insert(0, str(Path(__file__).parent.parent))
from spaces_hub import free_port  # noqa: E402

#: Guard against a hung start, not a measurement: a first start on a busy machine
#: migrates Superset's metadata database.
START_LIMIT = 900


def superset_installed() -> bool:
    return os.access(os.path.join(superset_venv(os.environ), "bin", "gunicorn"), os.X_OK)


class ToolsSession:
    """One session: ``base`` (full URL of the server), ``client`` (requests session
    authenticated with the server's token), ``runtime_dir`` (the tools' sockets)."""

    def __init__(
        self,
        home: Path,
        *,
        user: str,
        space: str,
        mode: str,
        tools: str,
        env: dict[str, str] | None = None,
        path_prepend: str = "",
    ):
        self.home = home
        self.user = user
        self.prefix = f"/user/{user}/{space}/"
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}{self.prefix}"
        self.runtime_dir = str(home.parent / f"rt-{secrets.token_hex(3)}")
        self.log_path = home.parent / f"jupyter-{space}.log"
        full_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SPACES_", "JUPYTERHUB_"))
        }
        full_env.update(
            {
                # keep the machine's cache (Superset's virtualenv) while moving HOME
                "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache"),
                "HOME": str(home),
                "JUPYTERHUB_USER": user,
                "SPACES_TOOLS": tools,
                "SPACES_MODE": mode,
                "SPACES_TOOLS_RUNTIME_DIR": self.runtime_dir,
                "JUPYTER_CONFIG_PATH": JUPYTER_CONFIG_DIR,
                "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
                "JUPYTER_RUNTIME_DIR": str(home / ".jupyter-runtime"),
            }
        )
        if os.environ.get("SPACES_SUPERSET_VENV"):
            full_env["SPACES_SUPERSET_VENV"] = os.environ["SPACES_SUPERSET_VENV"]
        if path_prepend:
            full_env["PATH"] = path_prepend + os.pathsep + full_env.get("PATH", "")
        full_env.update(env or {})
        self.env = full_env
        self.client = requests.Session()
        self.client.headers["Authorization"] = f"token {self.token}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> ToolsSession:
        self.home.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            f"--port={self.port}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.base_url={self.prefix}",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.home}",
        ]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            cmd,
            env=self.env,
            cwd=self.home,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait(lambda: self.client.get(self.base + "api/status", timeout=5).status_code == 200)
        return self

    def wait(self, ready, limit: float = START_LIMIT):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Jupyter server exited ({self.proc.returncode}):\n{self.log()}")
            try:
                result = ready()
                if result:
                    return result
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"not ready after {limit} s:\n{self.log()}")

    def status(self) -> dict[str, dict]:
        r = self.client.get(self.base + "spaces-tools/status", timeout=30)
        r.raise_for_status()
        return {t["name"]: t for t in r.json()["tools"]}

    def wait_ready(self, name: str) -> dict:
        def ready():
            tool = self.status()[name]
            if tool["status"] == "unavailable":
                raise RuntimeError(f"{name} unavailable: {tool['reason']}\n{self.log()}")
            return tool if tool["status"] == "ready" else None

        return self.wait(ready)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Superset runs in its own process group (started by the extension)
        self._kill_superset()
        if hasattr(self, "_log"):
            self._log.close()

    def _kill_superset(self) -> None:
        """The server stops its Superset; make sure, so no test leaves one behind."""
        import fcntl

        home = self.home / ".spaces" / "superset"
        lock = home / "superset.lock"
        if not lock.exists():
            return
        with open(lock) as f:
            for attempt in range(40):
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if attempt == 20 and (home / "superset.pid").exists():
                        os.kill(int((home / "superset.pid").read_text().strip()), signal.SIGTERM)
                    time.sleep(0.5)


def superset_api(session: ToolsSession):
    """A client for Superset's JSON API through the session's proxy: returns
    ``(http, base, csrf)``; ``http`` carries Superset's cookie after the first call."""
    base = session.base + "superset"
    r = session.client.get(base + "/api/v1/security/csrf_token/", timeout=60)
    r.raise_for_status()
    return session.client, base, r.json()["result"]


def run_sql(session: ToolsSession, database_id: int, sql: str, client_id: str) -> requests.Response:
    http, base, csrf = superset_api(session)
    body = {
        "database_id": database_id,
        "sql": sql,
        "client_id": client_id,
        "runAsync": False,
        "schema": None,
        "tab": "tests",
        "sql_editor_id": "1",
        "tmp_table_name": "",
        "select_as_cta": False,
        "ctas_method": "TABLE",
        "queryLimit": 1000,
        "expand_data": True,
    }
    return http.post(
        base + "/api/v1/sqllab/execute/",
        json=body,
        headers={"X-CSRFToken": csrf, "Referer": base + "/sqllab/"},
        timeout=120,
    )
