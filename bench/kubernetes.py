#!/usr/bin/env python3
"""Spawn-to-ready on a real Kubernetes API server: bare KubeSpawner vs KubeSpaceSpawner.

One run starts etcd + kube-apiserver 1.20.2 and the test kubelet (from
``tests/kubernetes/``), then two real JupyterHubs with the real proxy, each in its
own namespace: one with a plain ``KubeSpawner``, one with ``KubeSpaceSpawner`` and
the spaces service on the demo catalog. It alternates: a bare named-server spawn,
then alice's activation of the ``store-footprint`` space (through the hub API, the
same call the service makes), each timed from the request until the hub reports the
server ready, then stopped before the next. Both sessions run the same
single-user command as a local process.

Prints the median and p95 of each and the differences. Target: the activation adds
at most 1 s at p95.

Usage: python bench/kubernetes.py [--runs 10]
(needs ``scripts/setup.d/60-kube-apiserver.sh test`` to have built the API server)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "kubernetes"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests" / "integration" / "databases"))

from cluster import ControlPlane, missing_binaries, start_kubelet  # noqa: E402
from db_roles import drop_roles  # noqa: E402
from spaces_hub import SpacesHub, postgres_available, postgres_database  # noqa: E402

COMMON = """
c.JupyterHub.allow_named_servers = True
c.{cls}.namespace = {namespace!r}
c.{cls}.image = "jupyterhub-spaces/workbench:0.1.0"
c.{cls}.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.{cls}.start_timeout = 120
# the test kubelet runs containers as this user (root on CI machines)
c.{cls}.environment = {{"JUPYTER_CONFIG_PATH": {jupyter_config!r}}}
c.{cls}.http_timeout = 120
"""
BARE = COMMON + """
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.pvc_name_template = "claim-{{user_server}}"
c.KubeSpawner.storage_capacity = "10Gi"
"""
SPACES = COMMON + """
c.JupyterHub.spawner_class = "kube-space"
from jupyterhub_spaces.hub_roles import service_role
c.JupyterHub.load_roles.append(service_role())
c.KubeSpaceSpawner.assets_volume = {{"persistentVolumeClaim": {{"claimName": "spaces-assets"}}}}
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def wait_ready(hub: SpacesHub, user: str, server: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        r = hub.hub_api("GET", f"/users/{user}")
        r.raise_for_status()
        state = r.json()["servers"].get(server)
        if state and state["ready"]:
            return
        if not state or not state["pending"]:
            raise RuntimeError(f"{user}/{server} failed to start:\n{hub.log_tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{user}/{server} not ready in {timeout}s")
        time.sleep(0.05)


def wait_stopped(hub: SpacesHub, user: str, server: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        r = hub.hub_api("GET", f"/users/{user}")
        state = r.json()["servers"].get(server)
        if not state or not (state["ready"] or state["pending"]):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{user}/{server} did not stop")
        time.sleep(0.1)


def spawn(hub: SpacesHub, user: str, server: str) -> float:
    start = time.perf_counter()
    r = hub.hub_api("POST", f"/users/{user}/servers/{server}", json={})
    if r.status_code not in (201, 202):
        raise RuntimeError(f"starting {user}/{server}: {r.status_code} {r.text}")
    wait_ready(hub, user, server)
    elapsed = time.perf_counter() - start
    hub.hub_api("DELETE", f"/users/{user}/servers/{server}")
    wait_stopped(hub, user, server)
    return elapsed


def make_namespace(kubeconfig: Path, name: str) -> None:
    """A namespace with the assets claim a site would have made."""
    import asyncio

    from kubernetes_asyncio import client, config

    async def create():
        configuration = client.Configuration()
        await config.load_kube_config(config_file=str(kubeconfig),
                                      client_configuration=configuration)
        async with client.ApiClient(configuration) as api:
            core = client.CoreV1Api(api)
            await core.create_namespace({"metadata": {"name": name}})
            await core.create_namespaced_persistent_volume_claim(name, {
                "metadata": {"name": "spaces-assets"},
                "spec": {"accessModes": ["ReadWriteMany"],
                         "resources": {"requests": {"storage": "1Gi"}}},
            })

    asyncio.run(create())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    missing = missing_binaries()
    if missing:
        print("cannot run: missing " + "; ".join(missing), file=sys.stderr)
        return 2
    if not postgres_available():
        # KubeSpaceSpawner keeps space databases in PostgreSQL only
        print("cannot run: no PostgreSQL server answers at $SPACES_TEST_POSTGRES_URL",
              file=sys.stderr)
        return 2
    prefix = f"bench{os.getpid()}_"
    try:
        with postgres_database("spaces_bench_kube") as data_url:
            return run(args, data_url, prefix)
    finally:
        drop_roles(prefix)


def run(args, data_url: str, prefix: str) -> int:
    from jupyterhub_spaces import demo
    from jupyterhub_spaces.settings import SpacesSettings
    from jupyterhub_spaces.store import Store

    work = Path(tempfile.mkdtemp(prefix="bench-kubernetes-"))
    plane = ControlPlane(work / "kube").start()
    kubelet = start_kubelet(plane.kubeconfig, work / "kubelet")
    hubs: list[SpacesHub] = []
    os.environ["KUBECONFIG"] = str(plane.kubeconfig)
    try:
        jupyter_config = work / "jupyter-config"
        jupyter_config.mkdir()
        (jupyter_config / "jupyter_server_config.json").write_text(
            '{"ServerApp": {"allow_root": true}}')
        for name in ("bench-bare", "bench-spaces"):
            make_namespace(plane.kubeconfig, name)
        db_url = f"sqlite:///{work / 'spaces.sqlite'}"
        settings = SpacesSettings(db_url=db_url, data_root=str(work / "data"),
                                  source_db_url=data_url)
        store = Store(db_url)
        demo.seed(store, settings)
        store.dispose()
        spaces_config = (f"c.SpacesSettings.source_db_url = {settings.source_db_url!r}\n"
                         "c.SpacesSettings.data_root = ''\n"
                         "c.SpaceDatabases.backend = 'postgresql'\n"
                         f"c.SpaceDatabases.admin_url = {data_url!r}\n"
                         f"c.SpaceDatabases.role_prefix = {prefix!r}\n")
        bare = SpacesHub(work / "hub-bare", f"sqlite:///{work / 'bare-spaces.sqlite'}",
                         extra_config=BARE.format(cls="KubeSpawner", namespace="bench-bare",
                                                  jupyter_config=str(jupyter_config)))
        spaces = SpacesHub(work / "hub-spaces", db_url, spaces_config=spaces_config,
                           extra_config=SPACES.format(cls="KubeSpaceSpawner",
                                                      namespace="bench-spaces",
                                                      jupyter_config=str(jupyter_config)))
        for hub in (bare, spaces):
            hub.start()
            hubs.append(hub)

        # one unmeasured round each: imports, first pod, first PVC
        spawn(bare, "alice", "warmup")
        spawn(spaces, "alice", "store-footprint")
        timings: dict[str, list[float]] = {"bare KubeSpawner": [], "KubeSpaceSpawner": []}
        for i in range(args.runs):
            timings["bare KubeSpawner"].append(spawn(bare, "alice", f"bare-{i}"))
            timings["KubeSpaceSpawner"].append(spawn(spaces, "alice", "store-footprint"))
            print(f"run {i + 1}/{args.runs}: bare {timings['bare KubeSpawner'][-1]:.2f} s, "
                  f"space {timings['KubeSpaceSpawner'][-1]:.2f} s", flush=True)
    finally:
        for hub in hubs:
            hub.stop()
        kubelet.terminate()
        kubelet.wait(20)
        plane.stop()

    base, ours = timings["bare KubeSpawner"], timings["KubeSpaceSpawner"]
    print()
    print(f"{'spawn to ready':<20}{'median':>10}{'p95':>10}")
    for name, values in timings.items():
        print(f"{name:<20}{statistics.median(values):>9.2f}s{percentile(values, 0.95):>9.2f}s")
    diff_median = statistics.median(ours) - statistics.median(base)
    diff_p95 = percentile(ours, 0.95) - percentile(base, 0.95)
    print(f"{'difference':<20}{diff_median:>+9.2f}s{diff_p95:>+9.2f}s")
    print(f"ratio of medians (space / bare): {statistics.median(ours) / statistics.median(base):.2f}")
    print(f"target: at most +1.00 s at p95 -> {'met' if diff_p95 <= 1.0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
