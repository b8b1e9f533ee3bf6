"""The local session sandbox: the bwrap argv built from plain data (table-driven), the
session accounts' names, and real sandboxes (as root with bubblewrap: an account made
for the test, its data read-only, nothing of the host's state visible, no
capabilities, no_new_privs)."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
import uuid

import pytest

from jupyterhub_spaces import accounts, isolate
from jupyterhub_spaces.isolate import Sandbox, sandbox_argv
from jupyterhub_spaces.session import AssetInfo
from jupyterhub_spaces.session import asset_mounts, profile_env
from jupyterhub_spaces.accounts import make_home
from jupyterhub_spaces.isolate import runtime_paths

SYSTEM = (("/usr", ""), ("/etc", ""), ("/bin", "usr/bin"), ("/lib", "usr/lib"))
SETPRIV_TAIL = ["--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
HEAD = [
    "bwrap", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
    "--hostname", "space", "--die-with-parent", "--new-session",
    "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc",
    "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
    "--proc", "/proc", "--dev", "/dev",
    "--perms", "1777", "--tmpfs", "/dev/shm", "--perms", "1777", "--tmpfs", "/tmp",
]


@pytest.mark.parametrize(
    "box, mounts, setpriv",
    [
        pytest.param(
            Sandbox(1001, 1001, (), "/srv/var/home/a/s", SYSTEM),
            ["--perms", "0711", "--dir", "/srv", "--perms", "0711", "--dir", "/srv/var",
             "--perms", "0711", "--dir", "/srv/var/home", "--perms", "0711", "--dir", "/srv/var/home/a",
             "--bind", "/srv/var/home/a/s", "/srv/var/home/a/s"],
            ["--reuid", "1001", "--regid", "1001", "--clear-groups"],
            id="home only, no groups",
        ),
        pytest.param(
            Sandbox(
                1001, 1002, (3001, 3002), "/h/s", SYSTEM,
                read_only=("/opt/py", "/db/space-1/asset"),
                read_write=("/db/space-1/collaborative",),
                binds=(("/data/sales/stores", "/h/s/assets/sales/stores"),),
            ),
            ["--perms", "0711", "--dir", "/h", "--bind", "/h/s", "/h/s",
             "--perms", "0711", "--dir", "/opt", "--ro-bind", "/opt/py", "/opt/py",
             "--perms", "0711", "--dir", "/db", "--perms", "0711", "--dir", "/db/space-1",
             "--ro-bind", "/db/space-1/asset", "/db/space-1/asset",
             "--bind", "/db/space-1/collaborative", "/db/space-1/collaborative",
             # the data is mounted inside the home: after it, read-only
             "--perms", "0755", "--dir", "/h/s/assets", "--perms", "0755", "--dir", "/h/s/assets/sales",
             "--ro-bind", "/data/sales/stores", "/h/s/assets/sales/stores"],
            ["--reuid", "1001", "--regid", "1002", "--groups", "3001,3002"],
            id="runtimes, databases by role, data inside the home",
        ),
        pytest.param(
            Sandbox(1001, 1001, (), "/tmp/t/home", SYSTEM, read_only=("/usr/local/venv",)),
            # /tmp is the sandbox's own; nothing is made under the read-only /usr
            ["--perms", "0711", "--dir", "/tmp/t", "--bind", "/tmp/t/home", "/tmp/t/home",
             "--ro-bind", "/usr/local/venv", "/usr/local/venv"],
            ["--reuid", "1001", "--regid", "1001", "--clear-groups"],
            id="under /tmp and under /usr",
        ),
    ],
)
def test_sandbox_argv(box, mounts, setpriv):
    argv = sandbox_argv(box, ["jupyterhub-singleuser", "--debug"])
    assert argv == [
        *HEAD, *mounts, "--chdir", box.home, "--", "/usr/bin/setpriv", *setpriv, *SETPRIV_TAIL,
        "jupyterhub-singleuser", "--debug",
    ]
    # no bind of anything but what the sandbox names, and never a network namespace
    assert "--unshare-net" not in argv and "--unshare-all" not in argv


@pytest.mark.parametrize(
    "uid, gid, groups",
    [(0, 1001, ()), (1001, 0, ()), (1001, 1001, (0,))],
    ids=["uid 0", "gid 0", "group 0"],
)
def test_sandbox_never_runs_as_root(uid, gid, groups):
    with pytest.raises(ValueError, match="never runs as root"):
        sandbox_argv(Sandbox(uid, gid, groups, "/h", SYSTEM), ["true"])


def test_sandbox_refuses_relative_paths():
    with pytest.raises(ValueError, match="absolute"):
        sandbox_argv(Sandbox(1001, 1001, (), "/h", SYSTEM, read_only=("venv",)), ["true"])


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("spaces-alice", "spaces-alice"),
        ("spaces-Alice", "spaces-alice-" + accounts.hashlib.sha256(b"spaces-Alice").hexdigest()[:8]),
        ("spaces-a.b", "spaces-a-b-" + accounts.hashlib.sha256(b"spaces-a.b").hexdigest()[:8]),
        ("spaces-a-b", "spaces-a-b"),
        ("42", "u-42-" + accounts.hashlib.sha256(b"42").hexdigest()[:8]),
    ],
)
def test_safe_account_names(raw, expected):
    assert accounts.safe_name(raw) == expected


def test_account_names_are_short_and_never_collide():
    long_a, long_b = "spaces-" + "x" * 40 + "a", "spaces-" + "x" * 40 + "b"
    a, b = accounts.safe_name(long_a), accounts.safe_name(long_b)
    assert a != b and len(a) <= 32 and len(b) <= 32
    assert accounts.account_name("spaces-{username}", "a.b") != accounts.account_name("spaces-{username}", "a-b")


@pytest.mark.parametrize(
    "uid_range, expected",
    [
        (None, ["--system"]),
        ((60000, 60999), ["-K", "UID_MIN=60000", "-K", "UID_MAX=60999", "-K", "GID_MIN=60000", "-K", "GID_MAX=60999"]),
    ],
)
def test_useradd_command(uid_range, expected):
    cmd = accounts.useradd_command("spaces-alice", uid_range)
    assert cmd[:2] == ["useradd", "--user-group"]
    assert ["--shell", "/usr/sbin/nologin"] == cmd[cmd.index("--shell"):cmd.index("--shell") + 2]
    assert cmd[-2:] == ["--", "spaces-alice"]
    assert cmd[-2 - len(expected):-2] == expected


@pytest.mark.parametrize("uid_range", [(0, 10), (500, 100)])
def test_useradd_refuses_bad_ranges(uid_range):
    with pytest.raises(accounts.AccountError):
        accounts.useradd_command("x", uid_range)


def test_root_account_is_refused():
    with pytest.raises(accounts.AccountError, match="never run as root"):
        accounts.lookup("root")


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


# ---------------------------------------------------------------------------
# real sandboxes

needs_sandbox = pytest.mark.skipif(bool(isolate.missing()), reason=isolate.missing() or "")


@pytest.fixture(scope="module")
def account():
    name = f"spaces-t{uuid.uuid4().hex[:8]}"
    made = accounts.ensure_account(name)
    yield made
    subprocess.run(["userdel", name], check=False)


@pytest.fixture
def layout(tmp_path, account):
    state = tmp_path / "var"
    state.mkdir(mode=0o700)
    (state / "secret").write_text("hub secret\n")
    data = state / "data" / "sales" / "stores"
    data.mkdir(parents=True)
    (data / "stores.csv").write_text("id,city\n1,Leeds\n")
    os.chmod(data / "stores.csv", 0o644)
    home = state / "spaces-home" / "u" / "s"
    make_home(str(home), account)
    other = state / "spaces-home" / "v" / "s"
    other.mkdir(parents=True)
    (other / "notes").write_text("someone else's\n")
    box = Sandbox(
        account.uid, account.gid, (), str(home), isolate.host_system(),
        read_only=tuple(runtime_paths()),
        binds=((str(data), str(home / "assets" / "sales" / "stores")),),
    )
    return state, home, box


def run_in(box: Sandbox, script: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        sandbox_argv(box, ["sh", "-c", script]), capture_output=True, text=True, timeout=60
    )


@needs_sandbox
def test_the_session_is_its_own_unprivileged_account(layout, account):
    _, home, box = layout
    out = run_in(box, "id -u; id -g; id -G; grep -E '^(CapEff|CapPrm|CapBnd|CapInh|CapAmb|NoNewPrivs):' /proc/self/status").stdout
    lines = out.split("\n")
    assert lines[:3] == [str(account.uid), str(account.gid), str(account.gid)]
    status = dict(line.split(":\t") for line in lines[3:] if line)
    assert status == {
        "CapInh": "0" * 16, "CapPrm": "0" * 16, "CapEff": "0" * 16, "CapBnd": "0" * 16,
        "CapAmb": "0" * 16, "NoNewPrivs": "1",
    }
    assert os.stat(home).st_uid == account.uid and os.stat(home).st_mode & 0o777 == 0o700


@needs_sandbox
def test_the_session_reaches_its_home_and_data_and_nothing_else(layout):
    state, home, box = layout
    mounted = home / "assets" / "sales" / "stores"
    script = f"""
    cat {mounted}/stores.csv
    echo kept > {home}/notes.txt && echo WROTE-HOME
    echo changed > {mounted}/stores.csv && echo WROTE-DATA
    touch {mounted}/new.csv && echo CREATED-IN-DATA
    cat {state}/secret && echo READ-STATE
    ls -a {state} | grep -q secret && echo LISTED-STATE
    cat {state}/spaces-home/v/s/notes && echo READ-OTHER-HOME
    cat /proc/1/environ >/dev/null && echo READ-INIT
    python3 -c 'import sys; print(sys.version)' >/dev/null && echo PYTHON
    touch /tmp/scratch /dev/shm/scratch && echo WROTE-TMP
    """
    proc = run_in(box, script)
    assert "1,Leeds" in proc.stdout
    assert "WROTE-HOME" in proc.stdout and "PYTHON" in proc.stdout, proc.stderr
    assert "WROTE-TMP" in proc.stdout, proc.stderr
    for marker in ("WROTE-DATA", "CREATED-IN-DATA", "READ-STATE", "LISTED-STATE", "READ-OTHER-HOME"):
        assert marker not in proc.stdout, (proc.stdout, proc.stderr)
    assert (home / "notes.txt").read_text() == "kept\n"
    assert (state / "data" / "sales" / "stores" / "stores.csv").read_text() == "id,city\n1,Leeds\n"


@needs_sandbox
def test_the_session_sees_only_its_own_processes(layout):
    _, _, box = layout
    own_pid, visible = run_in(box, "echo $$; ls /proc | grep -c '^[0-9]'").stdout.split()
    assert int(own_pid) <= 3
    assert int(visible) < 10  # the hub's (and this test's) processes are not there


@needs_sandbox
def test_signals_reach_the_session_and_its_exit_code_comes_back(layout, tmp_path):
    _, home, box = layout
    proc = subprocess.Popen(
        sandbox_argv(box, ["sh", "-c", "trap 'echo term > term; exit 7' TERM; touch ready; "
                                       "while true; do sleep 0.1; done"]),
    )
    deadline = time.monotonic() + 30
    while not (home / "ready").exists():  # the trap is set
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    command = isolate.sandboxed_command(proc.pid)
    assert command is not None and command != proc.pid
    os.kill(command, signal.SIGTERM)
    assert proc.wait(timeout=30) == 7
    assert (home / "term").read_text() == "term\n"


@pytest.mark.parametrize("die_with_parent", [True, False])
def test_die_with_parent_follows_the_setting(die_with_parent):
    argv = sandbox_argv(Sandbox(1001, 1001, (), "/h", SYSTEM, die_with_parent=die_with_parent), ["true"])
    assert ("--die-with-parent" in argv) is die_with_parent


def test_make_home_keeps_hard_links_out(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to hand a home over")
    nobody = pwd.getpwnam("nobody")
    target = accounts.Account("nobody", nobody.pw_uid, nobody.pw_gid)
    home = tmp_path / "home"
    home.mkdir()
    hub_file = tmp_path / "hub.sqlite"
    hub_file.write_text("x")
    os.link(hub_file, home / "linked")
    (home / "mine").write_text("y")
    make_home(str(home), target)
    assert os.stat(hub_file).st_uid == 0  # a hard link to a hub file stays the hub's
    assert os.stat(home / "mine").st_uid == nobody.pw_uid
    assert os.stat(home).st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    "euid, bwrap, expected",
    [(1000, "/usr/bin/bwrap", "run as root"), (0, None, "install the Debian package 'bubblewrap'"), (0, "/usr/bin/bwrap", "")],
    ids=["not root", "no bubblewrap", "ready"],
)
def test_a_host_that_cannot_isolate_says_what_it_needs(monkeypatch, euid, bwrap, expected):
    monkeypatch.setattr(isolate.os, "geteuid", lambda: euid)
    monkeypatch.setattr(isolate.shutil, "which", lambda name: bwrap)
    monkeypatch.setattr(isolate.os, "access", lambda path, mode: True)
    why = isolate.missing()
    assert (expected in why) if expected else why == ""
