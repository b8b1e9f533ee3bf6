"""How much does governance add to starting a session?

In one run, two real hubs (each with configurable-http-proxy and the spaces service):

(a) a bare JupyterHub named-server spawn with ``SimpleLocalProcessSpawner`` running the
    same single-user command, started through the hub's REST API;
(b) a space activation through the spaces service (policy check, hub API, the
    LocalSpaceSpawner's own checks, the session in a bubblewrap sandbox as the user's own
    account with its data read-only),

alternating a and b, ``--rounds`` times each (default 10). Each time counts from the
request until the hub reports the server ready (JupyterLab answering behind the
proxy), then the server is stopped before the next round. Prints each time, the
medians and the ratio b/a (target: at most 1.05).

    python bench/activation.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from spaces_hub import API, SpacesHub  # noqa: E402

from jupyterhub_spaces import demo, orm, policy  # noqa: E402
from jupyterhub_spaces.settings import SpacesSettings  # noqa: E402
from jupyterhub_spaces.store import Store  # noqa: E402

SPACE = "store-footprint"
COMMON = """
c.JupyterHub.allow_named_servers = True
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
"""
BARE = COMMON + """
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {home!r}
c.Spawner.args = {args!r}
"""
SPACES = COMMON + """
c.JupyterHub.spawner_class = "local-space"
c.JupyterHub.load_roles.append({{
    "name": "spaces-service",
    "scopes": ["servers", "read:users", "admin:server_state"],
    "services": ["spaces"],
}})
c.LocalSpaceSpawner.home_dir_template = {home!r}
"""


def make_hub(workdir: Path, extra: str) -> SpacesHub:
    workdir.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{workdir / 'spaces.sqlite'}"
    settings = SpacesSettings(
        db_url=db_url, data_root=str(workdir / "data"),
        source_db_url=f"sqlite:///{workdir / 'sources.sqlite'}",
    )
    store = Store(db_url)
    demo.seed(store, settings)
    store.dispose()
    hub = SpacesHub(workdir, db_url, extra_config=extra,
                    spaces_config=f"c.SpacesSettings.source_db_url = {settings.source_db_url!r}\n")
    hub.start()
    return hub


def wait_ready(hub: SpacesHub, user: str, server: str, want: bool, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while True:
        model = hub.hub_api("GET", f"/users/{user}").json()["servers"].get(server)
        if want and model and model["ready"]:
            return
        if not want and (not model or (not model["ready"] and not model["pending"])):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{user}/{server} ready={want} not reached: {model}")
        time.sleep(0.05)


def bare_spawn(hub: SpacesHub) -> float:
    client = hub.token_session("alice")
    t0 = time.perf_counter()
    r = client.post(f"/hub/api/users/alice/servers/{SPACE}", json={})
    assert r.status_code in (201, 202), r.text
    wait_ready(hub, "alice", SPACE, True)
    elapsed = time.perf_counter() - t0
    hub.hub_api("DELETE", f"/users/alice/servers/{SPACE}")
    wait_ready(hub, "alice", SPACE, False)
    return elapsed


def space_activation(hub: SpacesHub, space_id: int) -> float:
    client = hub.token_session("alice")
    # a space's session is the named server of its id, not of its slug
    server = policy.server_name(space_id)
    t0 = time.perf_counter()
    r = client.post(f"{API}spaces/{space_id}/activate")
    assert r.status_code in (200, 202), r.text
    wait_ready(hub, "alice", server, True)
    elapsed = time.perf_counter() - t0
    r = client.post(f"{API}spaces/{space_id}/suspend")
    assert r.status_code in (200, 202), r.text
    wait_ready(hub, "alice", server, False)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="spaces-bench-"))
    root_args = ["--allow-root"] if os.geteuid() == 0 else []
    hubs = []
    try:
        bare = make_hub(root / "bare", BARE.format(home=str(root / "bare" / "homes" / "{username}"), args=root_args))
        hubs.append(bare)
        spaces = make_hub(root / "spaces", SPACES.format(home=str(root / "spaces" / "homes" / "{username}" / "{space}")))
        hubs.append(spaces)
        with Store(spaces.db_url).transaction() as db:
            space_id = db.query(orm.Space).filter_by(slug=SPACE).one().id

        # one untimed round each: first imports and caches are not what we measure
        bare_spawn(bare)
        space_activation(spaces, space_id)

        a, b = [], []
        for i in range(args.rounds):
            a.append(bare_spawn(bare))
            b.append(space_activation(spaces, space_id))
            print(f"round {i + 1:2d}: bare spawn {a[-1]:6.2f} s   space activation {b[-1]:6.2f} s", flush=True)
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"median bare JupyterHub spawn (a): {ma:.2f} s")
        print(f"median space activation     (b): {mb:.2f} s")
        print(f"ratio b/a: {mb / ma:.3f} (target <= 1.05)")
    finally:
        for hub in hubs:
            hub.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
