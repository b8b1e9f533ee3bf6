"""Start this session's Superset: ``python -m jupyterhub_spaces.tools.superset_run``.

jupyter-server-proxy (on first visit) and the tools extension (at session start) both
run this command. A lock in Superset's home makes the second one wait while the first
one's Superset serves, and take over if it exits, so the session never runs two.

While Superset starts (tens of seconds), a small placeholder answers on the session's
socket at once: 503 with ``Retry-After`` and a page that reloads itself, or a JSON
error for API clients. Superset itself listens on a private socket next to it; once it
answers, that socket takes the session's socket's name in one step, so the next
connection reaches Superset with no extra hop. Without the placeholder,
jupyter-server-proxy would wait for the socket with doubling pauses, and the user
would see Superset up to twice its start time late.
"""

from __future__ import annotations

import argparse
import fcntl
import http.client
import json
import os
import secrets
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

from .superset import gunicorn_command, make_setup, make_superset_config, superset_env

STARTING_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>Superset is starting</title></head>
<body style="font-family: sans-serif; margin: 3em">
<h1>Superset is starting for this space</h1>
<p>This takes a few seconds, longer the very first time. This page reloads by itself.</p>
</body></html>
"""


def prepare_home(setup) -> None:
    """Create Superset's private folder, its secret key (once) and its config (always)."""
    os.makedirs(setup.home, mode=0o700, exist_ok=True)
    os.makedirs(os.path.join(setup.home, "uploads"), mode=0o700, exist_ok=True)
    if not os.path.exists(setup.secret_key_path):
        # kept across activations: it signs cookies and encrypts stored passwords
        fd = os.open(setup.secret_key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    tmp = setup.config_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(make_superset_config(setup))
    os.replace(tmp, setup.config_path)


def end_with_parent() -> None:
    """End with the Jupyter server that started us, even if that server is killed
    without stopping its children (Linux)."""
    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_DEATHSIG
    except OSError:
        return
    if os.getppid() != parent:  # the parent is already gone
        sys.exit("superset: the session's server is gone; not starting")


class StartingHandler(BaseHTTPRequestHandler):
    """Every request while Superset starts: 503, come back in a moment."""

    def _starting(self):
        wants_html = "text/html" in self.headers.get("Accept", "")
        if wants_html:
            body, ctype = STARTING_PAGE.encode(), "text/html; charset=utf-8"
        else:
            body = json.dumps(
                {
                    "status": 503,
                    "error": "starting",
                    "message": "Superset is starting for this space; retry in a few seconds",
                }
            ).encode()
            ctype = "application/json"
        self.send_response(503)
        self.send_header("Retry-After", "2")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _starting

    def log_message(self, *args):
        pass


class StartingServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a client that hung up before reading the answer is not an error here
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Unix(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=5)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(5)
        self.sock.connect(self.path)


def answers(sock_path: str, path: str) -> bool:
    """Superset answers 200 on ``path`` at ``sock_path``."""
    conn = _Unix(sock_path)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def serve(setup, socket_path: str, token: str) -> int:
    """Run Superset with the placeholder in front until it answers; return its exit code."""
    private = socket_path + ".superset"
    for p in (socket_path, private):
        if os.path.exists(p):
            os.unlink(p)
    placeholder = StartingServer(socket_path, StartingHandler)
    threading.Thread(target=placeholder.serve_forever, daemon=True).start()

    cmd = gunicorn_command(setup, private)
    proc = subprocess.Popen(
        cmd,
        env=superset_env(setup, token, os.environ),
        cwd=setup.home,
        preexec_fn=_child_ends_with_us,
    )

    def stop(signum, _frame):
        proc.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        health = setup.app_root + "/health"
        while proc.poll() is None:
            if os.path.exists(private) and answers(private, health):
                # One atomic step: new connections reach Superset, none are refused.
                # A second name (not a move) leaves gunicorn its own to remove at exit.
                staged = socket_path + ".next"
                if os.path.exists(staged):
                    os.unlink(staged)
                os.link(private, staged)
                os.rename(staged, socket_path)
                break
            time.sleep(0.2)
    finally:
        placeholder.shutdown()
        placeholder.server_close()
    code = proc.wait()
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    return code


def _child_ends_with_us() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="the Jupyter server's base URL")
    parser.add_argument("--socket", required=True, help="unix socket to serve on")
    args = parser.parse_args(argv)

    token = os.environ.get("SPACES_SUPERSET_PROXY_TOKEN", "")
    if not token:
        sys.exit(
            "SPACES_SUPERSET_PROXY_TOKEN is not set: start Superset through the session's proxy"
        )
    end_with_parent()
    setup = make_setup(os.environ, args.base_url)
    os.makedirs(setup.home, mode=0o700, exist_ok=True)

    lock_fd = os.open(os.path.join(setup.home, "superset.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(
            "superset: already starting or running for this session; waiting",
            file=sys.stderr,
            flush=True,
        )
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
    # Superset inherits the locked file, so the lock lasts as long as it runs, even if
    # this process is gone first.
    os.set_inheritable(lock_fd, True)

    prepare_home(setup)
    sys.exit(serve(setup, args.socket, token))


if __name__ == "__main__":
    main()
