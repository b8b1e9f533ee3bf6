"""The embedded default as ``make demo`` runs it: ``hub_config/jupyterhub_config.py``
unchanged, only its ports and ``var/`` directory moved (random free ports, a temporary
directory), with the real proxy and the spaces service managed by the hub.

Isolation is attacked from inside a real session of every demo user (code run in a
kernel through the session's Jupyter server API) and from a local account made for
the test: every attempt on the hub's state, the checkout, other users' homes and
other spaces' databases must fail.
"""

from __future__ import annotations

import html
import json
import os
import pwd
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from sqlalchemy import select

from demo_hub import demo_hub  # noqa: F401  (the fixture)
from session_code import run_code

from jupyterhub_spaces import orm
from jupyterhub_spaces.databases.config import SpaceDatabases
from jupyterhub_spaces.databases.sqlite import SQLiteDatabases
from jupyterhub_spaces.store import Store

pytestmark = pytest.mark.slow



def demo_password(hub) -> str:
    return (hub.var / "demo-password").read_text().strip()


def test_password_is_printed_at_start(demo_hub):
    password = demo_password(demo_hub)
    assert len(password) >= 16
    assert f"password: {password}" in demo_hub.log()


@pytest.mark.parametrize(
    "user, org, admin", [("alice", "northwind", False), ("dave", "contoso", False), ("admin", "northwind", True)]
)
def test_demo_user_lands_on_the_spaces_app(demo_hub, user, org, admin):
    s, r = demo_hub.login(user, demo_password(demo_hub))
    assert urlparse(r.url).path == "/services/spaces/", [h.url for h in r.history] + [r.url]
    # the service knows them through the hub's OAuth, and sees the admin role
    me = s.get(f"{demo_hub.url}/services/spaces/login?next=/services/spaces/api/v1/me", timeout=30)
    assert me.status_code == 200, me.text[:300]
    assert (me.json()["name"], me.json()["org"], me.json()["admin"]) == (user, org, admin)
    # and the page they landed on is the Spaces app
    assert r.status_code == 200, r.text[:300]


@pytest.mark.parametrize(
    "user, password",
    [("alice", "not-the-password"), ("mallory", None), ("alice", "")],
    ids=["wrong-password", "unknown-user", "empty-password"],
)
def test_login_refused(demo_hub, user, password):
    s, r = demo_hub.login(user, demo_password(demo_hub) if password is None else password)
    assert urlparse(r.url).path == "/hub/login"
    assert "Invalid username or password" in html.unescape(r.text)
    assert s.get(f"{demo_hub.url}/hub/home", allow_redirects=False, timeout=30).status_code == 302


def test_first_start_loaded_the_demo_catalog(demo_hub):
    store = Store(f"sqlite:///{demo_hub.var / 'spaces.sqlite'}")
    try:
        with store.transaction() as db:
            slugs = set(db.scalars(select(orm.Space.slug)))
            users = {u.name: u.org.name for u in db.scalars(select(orm.User))}
    finally:
        store.dispose()
    assert {"retail-forecasting", "store-footprint", "weather-trends"} <= slugs
    assert users["alice"] == "northwind" and users["dave"] == "contoso"
    assert (demo_hub.var / "data" / "retail-sales" / "stores" / "stores.csv").exists()
    assert (demo_hub.var / "sources.sqlite").exists()


def test_restart_keeps_the_password(demo_hub):
    before = demo_password(demo_hub)
    demo_hub.stop()
    demo_hub.start()
    assert demo_password(demo_hub) == before
    s, r = demo_hub.login("bob", before)
    assert urlparse(r.url).path.startswith("/services/spaces/")


# ---------------------------------------------------------------------------
# isolation: what a session, or a local account of the machine, can reach

#: run in a session's kernel and as a local account: tries each (operation, path) and
#: prints what happened, "ok" or the error's name
PROBE = r"""
import errno, json, os, sys
def attempt(op, path):
    try:
        if op == "read" and os.path.isdir(path):
            os.listdir(path)
        elif op == "read":
            with open(path, "rb") as f:
                f.read(1)
        elif op == "write" and os.path.isdir(path):
            with open(os.path.join(path, "written-by-another-" + os.urandom(4).hex()), "x"):
                pass
        else:
            with open(path, "ab"):
                pass
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
print(json.dumps([[op, path, attempt(op, path)] for op, path in json.loads(TARGETS if "TARGETS" in globals() else sys.argv[1])]))
"""
#: what a refused attempt may answer: no permission, a read-only mount, or absent
#: (not in the sandbox at all)
REFUSED = {"EACCES", "EPERM", "EROFS", "ENOENT"}
WORKBENCH_SPACES = {"alice": "retail-forecasting", "dave": "weather-trends"}


def user_token(hub, user: str) -> str:
    s, _ = hub.login(user, demo_password(hub))
    r = s.post(f"{hub.url}/hub/api/users/{user}/tokens", json={"note": "isolation test", "expires_in": 3600},
               headers={"X-XSRFToken": s.cookies.get("_xsrf", path="/hub/")}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["token"]


def api(hub, token: str, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, f"{hub.url}/services/spaces/api/v1/{path}",
                            headers={"Authorization": f"token {token}"}, timeout=60, **kw)


@pytest.fixture(scope="module")
def sessions(demo_hub):
    """A running workbench session of every demo user: alice's and dave's demo spaces,
    a space of their own for the others. {user: (slug, space id, token)}."""
    running = {}
    for user in ("alice", "bob", "carol", "dave", "admin"):
        token = user_token(demo_hub, user)
        slug = WORKBENCH_SPACES.get(user)
        if slug is None:
            r = api(demo_hub, token, "POST", "spaces", json={"display_name": f"{user} scratch"})
            assert r.status_code == 201, r.text
            sid, slug = r.json()["id"], r.json()["slug"]
        else:
            sid = next(s["id"] for s in api(demo_hub, token, "GET", "spaces").json()["items"] if s["slug"] == slug)
        r = api(demo_hub, token, "POST", f"spaces/{sid}/activate")
        assert r.status_code in (200, 202), r.text
        running[user] = (slug, sid, token)
    for user, (slug, sid, token) in running.items():
        deadline = time.monotonic() + 180
        while (state := api(demo_hub, token, "GET", f"spaces/{sid}/status").json()).get("state") != "active":
            assert state.get("state") != "failed" and time.monotonic() < deadline, (user, state)
            time.sleep(0.5)
    return running


def targets(hub, sessions, user: str) -> list[list[str]]:
    """Everything ``user``'s session must not read or write: the hub's state, the
    checkout, the hub's /proc, other users' homes and secrets, other spaces' databases."""
    var = hub.var
    found = [[op, str(var / name)] for name in (
        "sources.sqlite", "spaces.sqlite", "jupyterhub.sqlite", "jupyterhub_cookie_secret",
        "demo-password", "data", "jupyterhub_spaces_databases", "spaces-home",
    ) for op in ("read", "write")]
    repo = Path(__file__).resolve().parents[2]
    found += [["read", str(repo / "hub_config" / "jupyterhub_config.py")],
              ["write", str(repo / "hub_config" / "jupyterhub_config.py")],
              ["write", str(repo / "jupyterhub_spaces" / "__init__.py")],
              ["write", str(Path(sys.executable).parent)],
              ["write", os.path.realpath(sys.executable)],
              ["read", f"/proc/{hub.proc.pid}/environ"],
              ["read", f"/proc/{hub.proc.pid}/root/{var}/demo-password"]]
    own_sid = sessions[user][1] if user in sessions else None
    for other, (slug, sid, _) in sessions.items():
        if other == user:
            continue
        home = var / "spaces-home" / other / slug
        found += [["read", str(home)], ["write", str(home)],
                  ["read", str(home / ".spaces" / "databases.json")],
                  ["write", str(home / ".spaces" / "databases.json")]]
        if sid != own_sid:
            for kind in ("asset", "collaborative", "publish"):
                path = space_database(hub, sid, kind)
                found += [["read", path], ["write", path], ["write", os.path.dirname(path)]]
    return found


def space_database(hub, space_id: int, kind: str) -> str:
    """Where the embedded default keeps a space's database file."""
    root = str(hub.var / "jupyterhub_spaces_databases")
    return SQLiteDatabases(SpaceDatabases(sqlite_root=root), "").path(space_id, kind)


def assert_all_refused(results: list, who: str) -> None:
    # every target exists on the host, so ENOENT inside the session means the
    # sandbox left it out
    allowed = [r for r in results if r[2] not in REFUSED]
    assert not allowed, f"{who} reached: {allowed}"


@pytest.mark.parametrize("user", ["alice", "bob", "carol", "dave", "admin"])
def test_a_session_reaches_nothing_of_the_hub_or_other_users(demo_hub, sessions, user):
    slug, _, token = sessions[user]
    found = targets(demo_hub, sessions, user)
    for _, path in found:  # the attack means something: each target is really there
        assert os.path.lexists(path), path
    base = f"{demo_hub.url}/user/{user}/{slug}/"
    code = f"TARGETS = {json.dumps(json.dumps(found))}\n" + PROBE
    out, err = run_code(base, token, code)
    assert out, err
    assert_all_refused(json.loads(out), f"{user}'s session")


@pytest.mark.parametrize("user", ["alice", "dave"])
def test_a_session_is_unprivileged(demo_hub, sessions, user):
    slug, sid, token = sessions[user]
    out, err = run_code(f"{demo_hub.url}/user/{user}/{slug}/", token, (
        "import json, os\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n"
        "print(json.dumps({'uid': os.getuid(), 'euid': os.geteuid(), 'gid': os.getgid(), 'groups': os.getgroups(),\n"
        "  **{k: status[k].strip() for k in ('CapEff', 'CapPrm', 'CapBnd', 'CapInh', 'CapAmb', 'NoNewPrivs')},\n"
        "  'home_mode': oct(os.stat(os.environ['HOME']).st_mode & 0o777), 'home_uid': os.stat(os.environ['HOME']).st_uid}))\n"
    ))
    facts = json.loads(out or "{}")
    assert facts, err
    account = pwd.getpwnam(f"spaces-{user}")
    assert facts["uid"] == facts["euid"] == account.pw_uid != 0
    assert facts["gid"] == account.pw_gid != 0 and 0 not in facts["groups"]
    assert {k: facts[k] for k in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb")} == dict.fromkeys(
        ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"), "0" * 16
    )
    assert facts["NoNewPrivs"] == "1"
    assert facts["home_mode"] == "0o700" and facts["home_uid"] == account.pw_uid


def test_the_hub_state_is_private_on_disk(demo_hub, sessions):
    var = demo_hub.var
    assert os.stat(var).st_mode & 0o777 == 0o700
    for name in ("sources.sqlite", "spaces.sqlite", "jupyterhub.sqlite", "jupyterhub_cookie_secret", "demo-password"):
        assert os.stat(var / name).st_mode & 0o777 == 0o600, name


@pytest.fixture
def local_account():
    name = f"spaces-local-{uuid.uuid4().hex[:6]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    yield name
    subprocess.run(["userdel", name], check=False)


def test_a_local_account_reaches_nothing_of_the_hub(demo_hub, sessions, local_account):
    # the temporary directories above var/ are private to the test; a checkout is not
    for parent in list(demo_hub.var.parents)[:-1]:
        if str(parent).startswith(tempfile.gettempdir() + "/"):
            os.chmod(parent, os.stat(parent).st_mode | 0o005)
    repo = str(Path(__file__).resolve().parents[2])
    # the checkout's code is no secret to the machine's users: only writing it is
    found = [t for t in targets(demo_hub, sessions, "nobody-in-particular")
             if not (t[0] == "read" and t[1].startswith(repo + "/"))]
    for user, (slug, sid, _) in sessions.items():  # every home and every space's databases
        home = demo_hub.var / "spaces-home" / user / slug
        found += [["read", str(home)], ["read", str(home / ".spaces" / "databases.json")]]
        for kind in ("asset", "collaborative", "publish"):
            path = space_database(demo_hub, sid, kind)
            found += [["read", path], ["write", path]]
    result = subprocess.run(
        ["setpriv", f"--reuid={local_account}", f"--regid={local_account}", "--init-groups",
         "/usr/bin/python3", "-c", PROBE, json.dumps(found)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert_all_refused(json.loads(result.stdout), "a local account")


def test_space_databases_hold_each_members_role(demo_hub, sessions):
    """The owner's session writes the Collaborative file; a viewer's session of the same
    space reads it and cannot write it, whatever URL it opens; no one writes the Asset
    file."""
    _, sid, alice = sessions["alice"]
    slug, carol_sid, carol = sessions["carol"]
    # carol becomes a viewer of alice's store-footprint (she has full retail-sales)
    footprint = next(s["id"] for s in api(demo_hub, alice, "GET", "spaces").json()["items"]
                     if s["slug"] == "store-footprint")
    r = api(demo_hub, alice, "POST", f"spaces/{footprint}/collaborators", json={"user": "carol", "role": "viewer"})
    assert r.status_code in (200, 201), r.text
    assert api(demo_hub, carol, "POST", f"spaces/{carol_sid}/suspend").status_code in (200, 202)
    deadline = time.monotonic() + 120
    while api(demo_hub, carol, "GET", f"spaces/{carol_sid}/status").json().get("state") != "suspended":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    # alice moves to store-footprint too, as its owner
    assert api(demo_hub, alice, "POST", f"spaces/{sid}/suspend").status_code in (200, 202)
    deadline = time.monotonic() + 120
    while api(demo_hub, alice, "GET", f"spaces/{sid}/status").json().get("state") != "suspended":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert api(demo_hub, alice, "POST", f"spaces/{footprint}/activate").status_code in (200, 202)
    assert api(demo_hub, carol, "POST", f"spaces/{footprint}/activate").status_code in (200, 202)
    for token in (alice, carol):
        deadline = time.monotonic() + 180
        while (state := api(demo_hub, token, "GET", f"spaces/{footprint}/status").json()).get("state") != "active":
            assert state.get("state") != "failed" and time.monotonic() < deadline, state
            time.sleep(0.5)
    collaborative = space_database(demo_hub, footprint, "collaborative")
    asset = space_database(demo_hub, footprint, "asset")
    write = (
        "import sqlite3\n"
        "def attempt(path, sql):\n"
        "    try:\n"
        "        c = sqlite3.connect(path); c.execute(sql); c.commit(); c.close(); return 'ok'\n"
        "    except Exception as e:\n"
        "        return type(e).__name__ + ': ' + str(e)\n"
    )
    out, err = run_code(f"{demo_hub.url}/user/alice/store-footprint/", alice, write + (
        f"print(attempt({collaborative!r}, 'CREATE TABLE notes (n INT)'), "
        f"attempt({collaborative!r}, 'INSERT INTO notes VALUES (1)'), "
        f"attempt({asset!r}, 'CREATE TABLE forged (n INT)'), sep='|')"
    ))
    assert out.strip().split("|")[:2] == ["ok", "ok"], (out, err)
    assert "readonly" in out.strip().split("|")[2], out
    out, err = run_code(f"{demo_hub.url}/user/carol/store-footprint/", carol, write + (
        f"print(sqlite3.connect({collaborative!r}).execute('SELECT n FROM notes').fetchall(), "
        f"attempt({collaborative!r}, 'INSERT INTO notes VALUES (2)'), "
        f"attempt({collaborative!r}, 'DROP TABLE notes'), "
        f"attempt({asset!r}, 'CREATE TABLE forged (n INT)'), sep='|')"
    ))
    rows, *attempts = out.strip().split("|")
    assert rows == "[(1,)]", (out, err)
    assert all("readonly" in a for a in attempts), out
