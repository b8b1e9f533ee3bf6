"""Activation end to end: a real hub and proxy, the spaces service and LocalSpaceSpawner
starting real JupyterLab sessions with the demo catalog.

One hub for the module; tests run in file order and each leaves alice with no active
space (``suspend_all``), so they do not depend on each other's sessions.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
import requests

from spaces_hub import API, SpacesHub, api_json, postgres_available, postgres_database
from jupyterhub_spaces import demo, orm, policy
from jupyterhub_spaces.settings import SpacesSettings
from jupyterhub_spaces.store import Store

pytestmark = pytest.mark.slow

RACE = 20

SPAWNER_CONFIG = """
c.JupyterHub.spawner_class = "local-space"
c.JupyterHub.allow_named_servers = True
from jupyterhub_spaces.hub_roles import service_role
c.JupyterHub.load_roles.append(service_role())
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.LocalSpaceSpawner.home_dir_template = %r
""" 


def start_space_hub(workdir: Path, extra_config: str = "", db_url: str | None = None) -> SpacesHub:
    """A hub with LocalSpaceSpawner, the demo catalog, alice's race spaces and one
    space of hers that no test starts."""
    db_url = db_url or f"sqlite:///{workdir / 'spaces.sqlite'}"
    settings = SpacesSettings(
        db_url=db_url,
        data_root=str(workdir / "data"),
        source_db_url=f"sqlite:///{workdir / 'sources.sqlite'}",
    )
    store = Store(db_url)
    demo.seed(store, settings)
    with store.transaction() as db:
        alice = db.query(orm.User).filter_by(name="alice").one()
        for i in range(RACE):
            space = orm.Space(
                slug=f"race-{i:02d}", display_name=f"Race {i}", owner_id=alice.id,
                tools=["jupyterlab"], profile="small", workers=0,
            )
            space.collaborators = [orm.Collaborator(user_id=alice.id, role="owner")]
            db.add(space)
        # one space no test starts (the race starts any of the race spaces)
        idle = orm.Space(
            slug="never-started", display_name="Never started", owner_id=alice.id,
            tools=["jupyterlab"], profile="small", workers=0,
        )
        idle.collaborators = [orm.Collaborator(user_id=alice.id, role="owner")]
        db.add(idle)
    h = SpacesHub(
        workdir,
        db_url,
        extra_config=SPAWNER_CONFIG % (str(workdir / "homes" / "{username}" / "{space}"))
        + extra_config,
        spaces_config=f"c.SpacesSettings.source_db_url = {settings.source_db_url!r}\n",
    )
    h.store = store
    h.homes = workdir / "homes"
    h.start()
    return h


@pytest.fixture(scope="module")
def space_hub(tmp_path_factory):
    h = start_space_hub(tmp_path_factory.mktemp("activation"))
    yield h
    suspend_all(h, "alice")
    h.stop()
    h.store.dispose()


def space_id(h: SpacesHub, slug: str) -> int:
    with h.store.transaction() as db:
        return db.query(orm.Space).filter_by(slug=slug).one().id


def server(h: SpacesHub, slug: str) -> str:
    """The JupyterHub server name of the space with this (in these tests unique) slug."""
    return policy.server_name(space_id(h, slug))


def servers(h: SpacesHub, user: str) -> dict:
    r = h.hub_api("GET", f"/users/{user}?include_stopped_servers=1")
    r.raise_for_status()
    return r.json()["servers"]


def wait_status(client, sid: int, want: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = api_json(client.get(f"{API}spaces/{sid}/status"))
        if status.get("state") == want:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"space {sid} never became {want}: {status}")
        time.sleep(0.5)


def space_env(h: SpacesHub, user: str, name: str) -> dict:
    """The environment of ``user``'s running session ``name`` (a local process)."""
    state = h.hub_api("GET", f"/users/{user}").json()["servers"][name]["state"]
    with open(f"/proc/{state['pid']}/environ", "rb") as f:
        return dict(item.split("=", 1) for item in f.read().decode().split("\0") if "=" in item)


def suspend_all(h: SpacesHub, user: str) -> None:
    for name, server in servers(h, user).items():
        if server["ready"] or server["pending"]:
            h.hub_api("DELETE", f"/users/{user}/servers/{name}")
    deadline = time.monotonic() + 120
    while any(s["ready"] or s["pending"] for s in servers(h, user).values()):
        assert time.monotonic() < deadline, servers(h, user)
        time.sleep(0.3)


@pytest.fixture
def alice(space_hub):
    suspend_all(space_hub, "alice")
    yield space_hub.token_session("alice")
    suspend_all(space_hub, "alice")


def test_alice_reaches_jupyterlab_with_her_data_read_only(space_hub, alice):
    sid = space_id(space_hub, "store-footprint")
    r = alice.post(f"{API}spaces/{sid}/activate")
    assert r.status_code in (200, 202), r.text
    status = wait_status(alice, sid, "active")
    assert status["server"] == f"space-{sid}"
    assert status["url"] == f"/user/alice/space-{sid}/"
    assert status["mode"] == "workbench"

    # JupyterLab through the proxy, in a browser logged in to the hub
    browser = space_hub.browser("alice")
    lab = browser.get(f"/user/alice/space-{sid}/lab")
    assert lab.status_code == 200 and "JupyterLab" in lab.text, lab.url
    # a session never asks to fetch JupyterLab's news nor checks for updates
    page_config = json.loads(
        re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', lab.text, re.S)[1]
    )
    assert page_config["news"] == {"disabled": True}, page_config.get("news")

    # the asset's files are in the session, at assets/<product>/<asset>
    base = f"/user/alice/space-{sid}/api/contents/"
    listing = alice.get(base + "assets/retail-sales/stores").json()
    assert [f["name"] for f in listing["content"]] == ["stores.csv"]
    original = alice.get(base + "assets/retail-sales/stores/stores.csv").json()["content"]
    assert original.startswith("store_id") or "," in original

    # ... and read-only, although the session runs as root here
    put = alice.put(base + "assets/retail-sales/stores/stores.csv",
                    json={"type": "file", "format": "text", "content": "overwritten"})
    assert put.status_code >= 400, put.text
    assert "Permission denied" in put.text or "Read-only file system" in put.text, put.text
    new = alice.put(base + "assets/retail-sales/stores/new.csv",
                    json={"type": "file", "format": "text", "content": "x"})
    assert new.status_code >= 400, new.text
    assert alice.delete(base + "assets/retail-sales/stores/stores.csv").status_code >= 400
    assert alice.get(base + "assets/retail-sales/stores/stores.csv").json()["content"] == original
    data_file = Path(space_hub.workdir, "data", "retail-sales", "stores", "stores.csv")
    assert data_file.read_bytes().decode() == original

    # the working directory is writable and survives a suspend / activate
    ok = alice.put(base + "notes.txt", json={"type": "file", "format": "text", "content": "kept"})
    assert ok.status_code in (200, 201), ok.text
    assert api_json(alice.post(f"{API}spaces/{sid}/suspend"))["space_id"] == sid
    assert wait_status(alice, sid, "suspended")["url"] is None
    assert alice.post(f"{API}spaces/{sid}/activate").status_code in (200, 202)
    wait_status(alice, sid, "active")
    assert alice.get(base + "notes.txt").json()["content"] == "kept"


def test_carol_locked_space_refuses_to_start(space_hub):
    carol = space_hub.token_session("carol")
    sid = space_id(space_hub, "retail-forecasting")
    r = carol.post(f"{API}spaces/{sid}/activate")
    body = api_json(r)
    assert r.status_code == 403 and "weather" in body["message"], body
    # straight to the hub: the spawner refuses on its own, naming the subscription
    direct = carol.post(f"/hub/api/users/carol/servers/space-{sid}", json={})
    assert direct.status_code == 403 and "weather" in direct.text, direct.text
    # and leaves no server record behind
    assert f"space-{sid}" not in servers(space_hub, "carol")


def test_default_server_is_not_a_way_around(space_hub):
    carol = space_hub.token_session("carol")
    r = carol.post("/hub/api/users/carol/server", json={})
    assert r.status_code == 400 and "/services/spaces/" in r.text, r.text
    # in a browser, the hub's spawn page for the default server sends you to the app
    page = space_hub.browser("carol").get("/hub/spawn")
    assert page.status_code == 200
    assert 'http-equiv="refresh" content="0; url=/services/spaces/"' in page.text, page.text[:2000]
    assert not servers(space_hub, "carol").get("", {}).get("ready")


def test_switch_suspends_the_first_space(space_hub, alice):
    first, second = space_id(space_hub, "store-footprint"), space_id(space_hub, "retail-forecasting")
    assert alice.post(f"{API}spaces/{first}/activate").status_code in (200, 202)
    wait_status(alice, first, "active")

    refused = alice.post(f"{API}spaces/{second}/activate")
    assert refused.status_code == 409, refused.text
    assert "Store footprint" in api_json(refused)["message"]

    switched = alice.post(f"{API}spaces/{second}/activate?switch=true")
    assert switched.status_code in (200, 202), switched.text
    assert api_json(alice.get(f"{API}spaces/{first}/status"))["state"] == "suspended"

    # the start-up progress, relayed from the hub as server-sent events, ends ready
    with alice.get(f"{API}spaces/{second}/progress", stream=True, timeout=180) as events:
        assert events.headers["Content-Type"].startswith("text/event-stream"), events.raw.read(1000)
        payloads = [line[len("data:"):] for line in events.iter_lines(decode_unicode=True)
                    if line and line.startswith("data:")]
    assert payloads and '"ready": true' in payloads[-1], payloads
    wait_status(alice, second, "active")

    # each selected tool has a status (waiting until the session reports it)
    tools = api_json(alice.get(f"{API}spaces/{second}/tools"))
    assert [t["name"] for t in tools["tools"]] == ["jupyterlab", "sqllab"]
    assert all(t["status"] in ("waiting", "ready", "unavailable") for t in tools["tools"])
    running = [n for n, s in servers(space_hub, "alice").items() if s["ready"] or s["pending"]]
    assert running == [f"space-{second}"]


def test_twenty_concurrent_starts_give_one_session(space_hub, alice):
    race(space_hub, alice)


def test_twenty_concurrent_starts_on_postgresql(tmp_path):
    if not postgres_available():
        pytest.skip("no PostgreSQL server answers at $SPACES_TEST_POSTGRES_URL")
    with postgres_database("spaces_activation") as db_url:
        h = start_space_hub(tmp_path, db_url=db_url)
        try:
            race(h, h.token_session("alice"))
        finally:
            suspend_all(h, "alice")
            h.stop()
            h.store.dispose()


def race(space_hub: SpacesHub, alice) -> None:
    """Half the starts through the service, half straight to the hub API (by server
    name: ``slug`` below names each space's server)."""
    ids = {server(space_hub, f"race-{i:02d}"): space_id(space_hub, f"race-{i:02d}") for i in range(RACE)}
    slugs = list(ids)
    token = space_hub.api_token("alice")
    barrier = threading.Barrier(RACE)
    results: dict[str, requests.Response] = {}

    def start(i: int, slug: str):
        headers = {"Authorization": f"token {token}"}
        barrier.wait()
        if i % 2:
            url = f"{space_hub.url}{API}spaces/{ids[slug]}/activate"
            results[slug] = requests.post(url, headers=headers, timeout=120)
        else:
            url = f"{space_hub.url}/hub/api/users/alice/servers/{slug}"
            results[slug] = requests.post(url, headers=headers, json={}, timeout=120)

    threads = [threading.Thread(target=start, args=(i, s)) for i, s in enumerate(slugs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    won = [s for s, r in results.items() if r.status_code in (200, 201, 202)]
    refused = [s for s, r in results.items() if r.status_code == 409]
    assert len(won) == 1, {s: (r.status_code, r.text[:200]) for s, r in results.items()}
    assert len(refused) == RACE - 1, {s: (r.status_code, r.text[:200]) for s, r in results.items()}
    winner = won[0]
    for slug in refused:
        assert winner in results[slug].text or "already active" in results[slug].text

    wait_status(alice, ids[winner], "active")
    # exactly one session, and no record of the refused servers
    records = {n for n in servers(space_hub, "alice") if n in ids}
    assert records == {winner}
    running = [n for n, s in servers(space_hub, "alice").items() if s["ready"] or s["pending"]]
    assert running == [winner]


def test_forged_user_options_get_nothing_extra(space_hub, alice):
    own = space_id(space_hub, "store-footprint")
    other = space_id(space_hub, "weather-trends")  # dave's: alice is no member
    url = f"/hub/api/users/alice/servers/space-{own}"

    pointed = alice.post(url, json={"user_options": {"space_id": other}})
    assert pointed.status_code == 400 and "does not match" in pointed.text, pointed.text

    forged = {
        "space_id": own,
        "profile": "large",
        "workers": 99,
        "mounts": [["/etc", "assets/etc"]],
        "data_root": "/",
        "cmd": ["sh", "-c", "id"],
    }
    r = alice.post(url, json={"user_options": forged})
    assert r.status_code in (201, 202), r.text
    wait_status(alice, own, "active")

    # the session's environment says what the store says
    state = space_hub.hub_api("GET", "/users/alice").json()["servers"][f"space-{own}"]["state"]
    with open(f"/proc/{state['pid']}/environ", "rb") as f:
        env = dict(item.split("=", 1) for item in f.read().decode().split("\0") if "=" in item)
    assert env["SPACES_PROFILE"] == "small" and env["SPACES_WORKERS"] == "0"
    assert env["SPACES_SPACE_ID"] == str(own)
    assert env["SPACES_ASSETS"] == '["assets/retail-sales/stores"]'

    # and only the space's own data is mounted
    listing = alice.get(f"/user/alice/space-{own}/api/contents/assets").json()
    assert [d["name"] for d in listing["content"]] == ["retail-sales"]
    home = space_hub.homes / "alice" / f"space-{own}"
    assert not (home / "assets" / "etc").exists()


def test_sessions_survive_a_hub_restart(tmp_path):
    h = start_space_hub(tmp_path, "c.JupyterHub.cleanup_servers = False\n")
    try:
        alice = h.token_session("alice")
        sid = space_id(h, "store-footprint")
        assert alice.post(f"{API}spaces/{sid}/activate").status_code in (200, 202)
        wait_status(alice, sid, "active")
        alice.put(f"/user/alice/space-{sid}/api/contents/before.txt",
                  json={"type": "file", "format": "text", "content": "before restart"})

        # same ports and config: the session keeps talking to the same hub address
        config = h.workdir / "jupyterhub_config.py"
        h.stop()
        h.write_config = lambda: config
        h.start()

        assert wait_status(alice, sid, "active")["url"] == f"/user/alice/space-{sid}/"
        got = alice.get(f"/user/alice/space-{sid}/api/contents/before.txt")
        assert got.status_code == 200 and got.json()["content"] == "before restart"
        # the restored session still counts as the one active space
        other = alice.post(f"{API}spaces/{space_id(h, 'race-00')}/activate")
        assert other.status_code == 409 and "Store footprint" in other.text
        direct = alice.post(f"/hub/api/users/alice/servers/{server(h, 'race-01')}", json={})
        assert direct.status_code == 409 and f"space-{sid}" in direct.text
        # and suspending it after the restart is recorded
        assert alice.post(f"{API}spaces/{sid}/suspend").status_code in (200, 202)
        wait_status(alice, sid, "suspended")
    finally:
        suspend_all(h, "alice")
        h.stop()
        h.store.dispose()


def test_idle_sessions_are_suspended_by_the_culler(tmp_path):
    culler = """
c.JupyterHub.load_roles.append({
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
})
c.JupyterHub.services.append({
    "name": "idle-culler",
    "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=15", "--cull-every=5"],
})
"""
    h = start_space_hub(tmp_path, culler)
    try:
        alice = h.token_session("alice")
        sid = space_id(h, "store-footprint")
        assert alice.post(f"{API}spaces/{sid}/activate").status_code in (200, 202)
        wait_status(alice, sid, "active")
        # nobody uses it: the culler stops it and the space shows suspended
        wait_status(alice, sid, "suspended", timeout=240)
        assert not servers(h, "alice")[f"space-{sid}"]["ready"]
    finally:
        suspend_all(h, "alice")
        h.stop()
        h.store.dispose()


def test_failed_activation_shows_failed_with_its_reason(space_hub):
    from jupyterhub_spaces import sandbox

    missing = sandbox.missing_programs()
    if not missing:
        pytest.skip("every sandbox program is installed here: a sandbox session would start")
    bob = space_hub.token_session("bob")
    sid = space_id(space_hub, "retail-forecasting")  # bob's subscriptions make it a sandbox
    r = bob.post(f"{API}spaces/{sid}/activate")
    assert r.status_code == 503, r.text
    assert all(program in api_json(r)["message"] for program in missing)
    status = api_json(bob.get(f"{API}spaces/{sid}/status"))
    assert status["state"] == "failed" and status["mode"] == "sandbox", status
    assert all(program in status["reason"] for program in missing)


def test_running_sessions_stop_when_the_rules_change_under_them(space_hub, alice):
    """A session started as a workbench must not outlive the rules that allowed it:
    lowering alice's weather subscription to spaces-only, then revoking it, stops her
    running session before the admin's request returns, with the reason audited."""
    admin = space_hub.token_session("admin")
    sid = space_id(space_hub, "retail-forecasting")
    mine = api_json(admin.get(f"{API}subscriptions?user=alice"))["items"]
    [weather] = [s for s in mine if s["target"]["name"] == "weather"]
    url = f"{API}subscriptions/{weather['id']}"

    def running() -> bool:
        server = servers(space_hub, "alice").get(f"space-{sid}") or {}
        return bool(server.get("ready")) and server.get("pending") != "stop"

    def activate():
        assert alice.post(f"{API}spaces/{sid}/activate").status_code in (200, 202)
        assert wait_status(alice, sid, "active")["mode"] == "workbench"

    try:
        activate()
        assert api_json(admin.patch(url, json={"level": "spaces"}))["level"] == "spaces"
        assert not running()
        assert "sandbox" in wait_status(alice, sid, "suspended")["reason"]
        assert api_json(admin.patch(url, json={"level": "full"}))["level"] == "full"
        activate()
        assert api_json(admin.patch(url, json={"status": "revoked"}))["status"] == "revoked"
        assert not running()
        wait_status(alice, sid, "suspended")
    finally:
        admin.patch(url, json={"status": "active", "level": "full"})
    events = api_json(admin.get(f"{API}audit?action=session.stop"))["items"]
    reasons = [e["detail"]["reason"] for e in events if e["detail"]["user"] == "alice"]
    assert len(reasons) == 2, events
    assert any(r.startswith("the session started as workbench") and "sandbox" in r for r in reasons), reasons
    assert any(r.startswith("locked") and "weather" in r for r in reasons), reasons


def test_members_of_two_spaces_of_one_slug_activate_each(space_hub, alice):
    """Slugs are unique per owner only: alice's and bob's spaces are both 'twin', each
    is a member of both, and each space is a session of its own for each of them (its
    own server, URL and home), never the other one."""
    with space_hub.store.transaction() as db:
        users = {u.name: u for u in db.query(orm.User).filter(orm.User.name.in_(["alice", "bob"]))}
        ids = []
        for owner, other in (("alice", "bob"), ("bob", "alice")):
            space = orm.Space(slug="twin", display_name=f"Twin of {owner}", owner_id=users[owner].id,
                              tools=["jupyterlab"], profile="small", workers=0)
            space.collaborators = [orm.Collaborator(user_id=users[owner].id, role="owner"),
                                   orm.Collaborator(user_id=users[other].id, role="editor")]
            db.add(space)
            db.flush()
            ids.append(space.id)
    bob = space_hub.token_session("bob")
    try:
        for user, client in (("alice", alice), ("bob", bob)):
            for sid in ids:
                r = client.post(f"{API}spaces/{sid}/activate?switch=true")
                assert r.status_code in (200, 202), r.text
                status = wait_status(client, sid, "active")
                assert (status["slug"], status["url"]) == ("twin", f"/user/{user}/space-{sid}/"), status
                r = client.get(f"/user/{user}/space-{sid}/api/contents/")
                assert r.status_code == 200 and not {f["name"] for f in r.json()["content"]} & {"mine.txt"}, r.text
                put = client.put(f"/user/{user}/space-{sid}/api/contents/mine.txt",
                                 json={"type": "file", "format": "text", "content": str(sid)})
                assert put.status_code in (200, 201), put.text
                env = space_env(space_hub, user, f"space-{sid}")
                assert env["SPACES_SPACE_ID"] == str(sid) and env["SPACES_SPACE"] == "twin"
            running = [n for n, s in servers(space_hub, user).items() if s["ready"] or s["pending"]]
            assert running == [f"space-{ids[1]}"]
            for sid in ids:
                assert (space_hub.homes / user / f"space-{sid}" / "mine.txt").read_text() == str(sid)
    finally:
        suspend_all(space_hub, "bob")
