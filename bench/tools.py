"""Superset behind the session's proxy against the same Superset started directly.

    python bench/tools.py [--rounds 3] [--queries 30]

For each round, alternating:

- direct: start Superset with the session's launcher on a unix socket and time until
  its first 200; then run N SQL Lab queries straight on the socket and read its RSS;
- proxy: a session Jupyter server (jupyter-server-proxy + the tools extension, with
  Superset's eager start off) is already up; time from the first request to
  ``<server>/superset/health`` (which makes jupyter-server-proxy start Superset) until
  the first 200 there, polling like the direct round does; then run N SQL Lab queries
  through the proxy and read its RSS.

Both use a metadata database that already exists (a session's second activation), so
the numbers are process cold starts, not first-ever migrations. Prints medians and the
ratios proxy/direct. Targets: proxy overhead under 10 % of the cold start, under 400 MB
RSS for one worker.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

USER = "bench"
PREFIX = f"/user/{USER}/bench/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=120)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)


def unix_request(sock: str, method: str, path: str, headers=None, body=None):
    conn = UnixHTTP(sock)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def rss_mb(pid_file: Path) -> float:
    """RSS of Superset's gunicorn master and its workers, in MB."""
    master = int(pid_file.read_text().strip())
    pids = [master] + [
        int(p)
        for p in subprocess.run(
            ["pgrep", "-P", str(master)], capture_output=True, text=True
        ).stdout.split()
    ]
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def execute_body(dbid: int, n: int) -> dict:
    return {
        "database_id": dbid,
        "sql": f"SELECT region, SUM(amount) AS total, {n} AS n FROM sales GROUP BY region",
        "client_id": secrets.token_hex(5),
        "runAsync": False,
        "schema": None,
        "tab": "bench",
        "sql_editor_id": "1",
        "tmp_table_name": "",
        "select_as_cta": False,
        "ctas_method": "TABLE",
        "queryLimit": 1000,
        "expand_data": True,
    }


def wait_until(ready, limit=900):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (OSError, requests.RequestException, http.client.HTTPException):
            pass
        # gentle polling: on a small machine a busy poll slows the start it measures
        time.sleep(0.1)
    raise RuntimeError("not ready in time")


class Bench:
    def __init__(self, work: Path, queries: int):
        self.work = work
        self.queries = queries
        self.db = work / "assets.sqlite"
        with sqlite3.connect(self.db) as c:
            c.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT, amount REAL)")
            c.executemany(
                "INSERT INTO sales (region, amount) VALUES (?, ?)",
                [(r, i * 1.5) for i in range(2000) for r in ("north", "south", "east", "west")],
            )
        self.home = work / "home"
        self.home.mkdir()
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SPACES_", "JUPYTERHUB_"))
        }
        self.env.update(
            {
                "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache"),
                "HOME": str(self.home),
                "JUPYTERHUB_USER": USER,
                "SPACES_TOOLS": "superset,sqllab",
                "SPACES_MODE": "workbench",
                "SPACES_ASSET_DB_URL": f"sqlite:///{self.db}",
            }
        )
        self.pid_file = self.home / ".spaces" / "superset" / "superset.pid"

    # -- direct -----------------------------------------------------------------------
    def direct_round(self) -> tuple[float, float]:
        sock = str(self.work / "direct.sock")
        token = secrets.token_urlsafe(32)
        env = {**self.env, "SPACES_SUPERSET_PROXY_TOKEN": token}
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterhub_spaces.tools.superset_run",
                "--base-url",
                PREFIX,
                "--socket",
                sock,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_until(lambda: unix_request(sock, "GET", PREFIX + "superset/health")[0] == 200)
            cold = time.monotonic() - t0
            auth = {"X-Spaces-User": USER, "X-Spaces-Proxy-Token": token}
            status, headers, body = unix_request(
                sock, "GET", PREFIX + "superset/api/v1/security/csrf_token/", auth
            )
            cookie = headers["Set-Cookie"].split(";", 1)[0]
            csrf = json.loads(body)["result"]
            dbid = self.asset_id()
            for n in range(self.queries):
                status, _, body = unix_request(
                    sock,
                    "POST",
                    PREFIX + "superset/api/v1/sqllab/execute/",
                    {
                        **auth,
                        "Cookie": cookie,
                        "X-CSRFToken": csrf,
                        "Content-Type": "application/json",
                    },
                    json.dumps(execute_body(dbid, n)),
                )
                assert status == 200, body[:300]
            return cold, rss_mb(self.pid_file)
        finally:
            self.stop(proc)

    # -- through the proxy --------------------------------------------------------------
    def start_server(self):
        port = free_port()
        token = secrets.token_hex(16)
        env = {
            **self.env,
            "SPACES_TOOLS_RUNTIME_DIR": str(self.work / "rt"),
            "JUPYTER_CONFIG_PATH": str(
                Path(__file__).resolve().parent.parent
                / "jupyterhub_spaces"
                / "tools"
                / "jupyter-config"
            ),
        }
        cmd = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.base_url={PREFIX}",
            f"--IdentityProvider.token={token}",
            "--SpacesTools.start_superset=False",
            f"--ServerApp.root_dir={self.home}",
        ] + (["--allow-root"] if os.geteuid() == 0 else [])
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=self.home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        http = requests.Session()
        http.headers["Authorization"] = f"token {token}"
        base = f"http://127.0.0.1:{port}{PREFIX}"
        wait_until(lambda: http.get(base + "api/status", timeout=5).status_code == 200)
        return proc, http, base

    def proxy_round(self) -> tuple[float, float, float]:
        proc, http, base = self.start_server()
        sock = str(self.work / "rt" / "superset.sock")
        try:
            t0 = time.monotonic()
            # The first request starts Superset; a placeholder answers 503 meanwhile.
            # Watch Superset's own socket too: the gap between the two first 200s is
            # what the proxy adds, apart from how fast Superset started this time.
            seen = {}

            def ready():
                now = time.monotonic()
                if (
                    "socket" not in seen
                    and os.path.exists(sock)
                    and unix_request(sock, "GET", PREFIX + "superset/health")[0] == 200
                ):
                    seen["socket"] = now - t0
                if http.get(base + "superset/health", timeout=900).status_code == 200:
                    seen.setdefault("socket", time.monotonic() - t0)
                    return True
                return False

            wait_until(ready)
            cold = time.monotonic() - t0
            csrf = http.get(base + "superset/api/v1/security/csrf_token/").json()["result"]
            dbid = self.asset_id()
            for n in range(self.queries):
                r = http.post(
                    base + "superset/api/v1/sqllab/execute/",
                    json=execute_body(dbid, n),
                    headers={"X-CSRFToken": csrf},
                )
                assert r.status_code == 200, r.text[:300]
            return cold, rss_mb(self.pid_file), cold - seen["socket"]
        finally:
            self.stop(proc)
            # jupyter-server-proxy stops the Superset it started with the server
            wait_until(lambda: not self.superset_running(), limit=60)

    def asset_id(self) -> int:
        state = json.loads((self.home / ".spaces" / "superset" / "spaces-state.json").read_text())
        return state["databases"]["asset"]

    def superset_running(self) -> bool:
        try:
            os.kill(int(self.pid_file.read_text().strip()), 0)
            return True
        except (OSError, ValueError):
            return False

    def stop(self, proc):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="spaces-bench-tools-") as tmp:
        bench = Bench(Path(tmp), args.queries)
        print("warming up: first start creates the session's metadata database ...", flush=True)
        bench.direct_round()
        direct, proxy = [], []
        for i in range(args.rounds):
            for name, fn, out in (
                ("direct", bench.direct_round, direct),
                ("proxy", bench.proxy_round, proxy),
            )[:: 1 if i % 2 == 0 else -1]:
                cold, rss, *gap = fn()
                out.append((cold, rss, *gap))
                extra = f", of which after Superset answered {gap[0]:5.2f} s" if gap else ""
                print(
                    f"round {i + 1} {name:6s}: cold start {cold:6.2f} s{extra}, "
                    f"RSS after {args.queries} queries {rss:6.1f} MB",
                    flush=True,
                )
    d_cold = statistics.median(r[0] for r in direct)
    p_cold = statistics.median(r[0] for r in proxy)
    gap = statistics.median(r[2] for r in proxy)
    d_rss = statistics.median(r[1] for r in direct)
    p_rss = statistics.median(r[1] for r in proxy)
    print()
    print(f"{'':28s}{'direct':>10s}{'proxy':>10s}{'ratio':>8s}")
    print(f"{'cold start to first 200 (s)':28s}{d_cold:10.2f}{p_cold:10.2f}{p_cold / d_cold:8.3f}")
    print(f"{'RSS after queries (MB)':28s}{d_rss:10.1f}{p_rss:10.1f}{p_rss / d_rss:8.3f}")
    print(
        f"proxy overhead (first 200 through the proxy after Superset's own): {gap:.2f} s = "
        f"{100 * gap / d_cold:.1f} % of the direct cold start (target < 10 %)"
    )
    print(f"RSS for one worker: {p_rss:.0f} MB (target < 400 MB)")


if __name__ == "__main__":
    main()
