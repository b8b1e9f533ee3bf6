"""A managed service stops when the hub asks, even one that ignores the signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from jupyterhub_spaces.managed import stops_promptly

#: a service that ignores SIGINT and SIGTERM, with a child that does too
STUBBORN = """
import signal, subprocess, sys, time
for s in (signal.SIGINT, signal.SIGTERM):
    signal.signal(s, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_service_that_ignores_the_hubs_signal_is_killed_with_its_children():
    # started as JupyterHub starts a managed service: its own session
    proc = subprocess.Popen(stops_promptly([sys.executable, "-c", STUBBORN], grace=1),
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    child = int(proc.stdout.readline())
    try:
        proc.send_signal(signal.SIGINT)  # what the hub sends first
        status = proc.wait(timeout=60)
        assert status == -signal.SIGKILL, status  # the whole group, timeout included
        deadline = time.monotonic() + 60
        while running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(child)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if running(child):
            os.kill(child, signal.SIGKILL)


def test_a_service_that_stops_by_itself_keeps_its_exit_status():
    proc = subprocess.Popen(stops_promptly([sys.executable, "-c", "import sys; sys.exit(3)"]),
                            start_new_session=True)
    assert proc.wait(timeout=60) == 3
