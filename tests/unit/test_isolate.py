"""The local session launcher: data really read-only (even for root), the session's own
/proc, and signals passed to the session. Runs real namespaces; skips without root."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from jupyterhub_spaces.isolate import can_isolate
from jupyterhub_spaces.spawner import asset_mounts, profile_env
from jupyterhub_spaces.session import AssetInfo

needs_namespaces = pytest.mark.skipif(not can_isolate(), reason="needs root (CAP_SYS_ADMIN)")


def launch(plan: dict, script: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "jupyterhub_spaces.isolate", json.dumps(plan), "sh", "-c", script],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )


@pytest.fixture
def layout(tmp_path):
    data = tmp_path / "data"
    (data / "sales" / "stores").mkdir(parents=True)
    (data / "sales" / "stores" / "stores.csv").write_text("id,city\n1,Leeds\n")
    (data / "other").mkdir()
    (data / "other" / "secret.csv").write_text("x\n")
    home = tmp_path / "home"
    home.mkdir()
    plan = {
        "binds": [[str(data / "sales" / "stores"), str(home / "assets" / "sales" / "stores")]],
        "protect": [str(data)],
    }
    return data, home, plan


@needs_namespaces
def test_writes_to_the_data_fail_even_for_root(layout):
    data, home, plan = layout
    mounted = home / "assets" / "sales" / "stores"
    script = f"""
    cat {mounted}/stores.csv
    echo changed > {mounted}/stores.csv && echo WROTE-MOUNT
    touch {mounted}/new.csv && echo CREATED
    rm {mounted}/stores.csv && echo REMOVED
    echo changed > {data}/other/secret.csv && echo WROTE-DATA-ROOT
    mount -o remount,rw {mounted} && echo REMOUNTED
    echo kept > {home}/notes.txt
    """
    proc = launch(plan, script)
    out, err = proc.communicate(timeout=60)
    assert "1,Leeds" in out
    for marker in ("WROTE-MOUNT", "CREATED", "REMOVED", "WROTE-DATA-ROOT", "REMOUNTED"):
        assert marker not in out, (out, err)
    assert "Read-only file system" in err
    # the data is untouched, the home is writable
    assert (data / "sales" / "stores" / "stores.csv").read_text() == "id,city\n1,Leeds\n"
    assert (data / "other" / "secret.csv").read_text() == "x\n"
    assert (home / "notes.txt").read_text() == "kept\n"
    # outside the session nothing is mounted
    assert not (mounted / "stores.csv").exists()


@needs_namespaces
def test_the_session_sees_only_its_own_processes(layout):
    _, _, plan = layout
    proc = launch(plan, "echo $$; ls /proc | grep -c '^[0-9]'")
    out, _ = proc.communicate(timeout=60)
    own_pid, visible = out.split()
    assert int(own_pid) <= 3
    assert int(visible) < 10  # the hub's (and this test's) processes are not there


@needs_namespaces
def test_signals_reach_the_session_and_its_exit_code_comes_back(layout, tmp_path):
    _, _, plan = layout
    marker, ready = tmp_path / "got-term", tmp_path / "ready"
    proc = launch(
        plan,
        f"trap 'echo term > {marker}; exit 7' TERM; touch {ready}; while true; do sleep 0.1; done",
    )
    deadline = time.monotonic() + 30
    while not ready.exists():  # the trap is set
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 7
    assert marker.read_text() == "term\n"


def test_asset_mounts_and_profile_env():
    assets = [
        AssetInfo(1, "stores", "files", "sales/stores", "retail sales"),
        AssetInfo(2, "daily", "table", "daily_sales", "retail sales"),
        AssetInfo(3, "result/v2", "files", "derived/7", ""),
    ]
    mounts = asset_mounts(assets, "/srv/data")
    assert [(m.source, m.target) for m in mounts] == [
        ("/srv/data/sales/stores", "assets/retail sales/stores"),
        ("/srv/data/derived/7", "assets/derived/result-v2"),
    ]
    env = profile_env("small", {"cpu_limit": 1, "mem_limit": "2G", "cpu_guarantee": None}, 2)
    assert env == {
        "SPACES_PROFILE": "small", "SPACES_WORKERS": "2",
        "SPACES_CPU_LIMIT": "1", "SPACES_MEM_LIMIT": "2G",
    }
