"""Space sessions on a real Kubernetes API server: a real JupyterHub with
KubeSpaceSpawner, the real proxy and the spaces service, and the test kubelet running
each session pod's command as a local process.

alice activates a workbench space and reaches JupyterLab through the proxy; her pod
carries the asset volumes and the profile's resources; the one-active-space rule
holds; suspending deletes the pod and never an asset or shared volume. bob's sandbox
pod gets the guacd sidecar and a NetworkPolicy.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "databases"))

from db_roles import drop_roles  # noqa: E402
from spaces_hub import API, SpacesHub, api_json, postgres_available, postgres_database  # noqa: E402

pytestmark = pytest.mark.slow

spawner_module = pytest.importorskip("jupyterhub_spaces.spawner")
if not hasattr(spawner_module.KubeSpaceSpawner, "network_policy"):
    pytest.skip("KubeSpaceSpawner needs kubespawner", allow_module_level=True)

ASSETS_CLAIM = "spaces-assets"
SHARED_CLAIM = "spaces-shared"
GUACD_IMAGE = "guacamole/guacd:1.5.5"
SANDBOX_IMAGE = "jupyterhub-spaces/sandbox:0.1.0"

KUBE_CONFIG = """
c.JupyterHub.spawner_class = "kube-space"
c.JupyterHub.allow_named_servers = True
from jupyterhub_spaces.hub_roles import service_role
c.JupyterHub.load_roles.append(service_role())
c.KubeSpaceSpawner.namespace = {namespace!r}
c.KubeSpaceSpawner.image = "jupyterhub-spaces/workbench:0.1.0"
c.KubeSpaceSpawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.KubeSpaceSpawner.start_timeout = 120
# the test kubelet runs containers as this user, root on CI machines: the sessions'
# Jupyter servers read allow_root from this config directory
c.KubeSpaceSpawner.environment = {{"JUPYTER_CONFIG_PATH": {jupyter_config!r}}}
c.KubeSpaceSpawner.http_timeout = 120
c.KubeSpaceSpawner.assets_volume = {{"persistentVolumeClaim": {{"claimName": {assets!r}}}}}
c.KubeSpaceSpawner.protected_claims = [{shared!r}]
c.KubeSpaceSpawner.volumes = [
    {{"name": "shared", "persistentVolumeClaim": {{"claimName": {shared!r}}}}},
]
c.KubeSpaceSpawner.volume_mounts = [{{"name": "shared", "mountPath": "/home/jovyan/shared"}}]
c.KubeSpaceSpawner.guacd_image = {guacd!r}
c.KubeSpaceSpawner.sandbox_image = {sandbox!r}
# the site does not offer SQL Lab: a space that selected it starts without it
c.KubeSpaceSpawner.offered_tools = ["jupyterlab", "superset", "rstudio"]
"""


@pytest.fixture(scope="module")
async def kube_namespace(kube_api):
    """A namespace of its own, with the shared claims a site would have made."""
    from kubernetes_asyncio import client

    core = client.CoreV1Api(kube_api)
    name = f"spaces-e2e-{secrets.token_hex(3)}"
    await core.create_namespace({"metadata": {"name": name}})
    for claim in (ASSETS_CLAIM, SHARED_CLAIM):
        await core.create_namespaced_persistent_volume_claim(name, {
            "metadata": {"name": claim},
            "spec": {"accessModes": ["ReadWriteMany"],
                     "resources": {"requests": {"storage": "1Gi"}}},
        })
    yield name, core, client.NetworkingV1Api(kube_api)
    await core.delete_collection_namespaced_pod(name)


@pytest.fixture(scope="module")
def space_databases():
    """The PostgreSQL database of the space databases (KubeSpaceSpawner refuses SQLite
    ones: a pod cannot reach the hub's files), with a role prefix of this run's."""
    if not postgres_available():
        message = "no PostgreSQL server answers at $SPACES_TEST_POSTGRES_URL"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    prefix = f"k{secrets.token_hex(4)}_"
    with postgres_database("spaces_kube_dbs") as url:
        yield url, prefix
    drop_roles(prefix)


@pytest.fixture(scope="module")
def kube_hub(kubelet, kubeconfig, kube_namespace, space_databases, tmp_path_factory):
    from jupyterhub_spaces import demo
    from jupyterhub_spaces.settings import SpacesSettings
    from jupyterhub_spaces.store import Store

    namespace = kube_namespace[0]
    data_url, prefix = space_databases
    workdir = tmp_path_factory.mktemp("kube-hub")
    db_url = f"sqlite:///{workdir / 'spaces.sqlite'}"
    settings = SpacesSettings(db_url=db_url, data_root=str(workdir / "data"),
                              source_db_url=data_url)
    store = Store(db_url)
    demo.seed(store, settings)
    jupyter_config = workdir / "jupyter-config"
    jupyter_config.mkdir()
    (jupyter_config / "jupyter_server_config.json").write_text(
        '{"ServerApp": {"allow_root": true}}')
    hub = SpacesHub(
        workdir, db_url,
        extra_config=KUBE_CONFIG.format(namespace=namespace,
                                        assets=ASSETS_CLAIM, shared=SHARED_CLAIM,
                                        guacd=GUACD_IMAGE, sandbox=SANDBOX_IMAGE,
                                        jupyter_config=str(jupyter_config)),
        # on Kubernetes an asset's location is its path on the assets volume
        spaces_config=(f"c.SpacesSettings.source_db_url = {settings.source_db_url!r}\n"
                       "c.SpacesSettings.data_root = ''\n"
                       "c.SpaceDatabases.backend = 'postgresql'\n"
                       f"c.SpaceDatabases.admin_url = {data_url!r}\n"
                       f"c.SpaceDatabases.role_prefix = {prefix!r}\n"),
    )
    old = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(kubeconfig)
    try:
        hub.start()
    finally:
        if old is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = old
    hub.store = store
    yield hub
    hub.stop()
    store.dispose()


def space_id(hub, slug: str) -> int:
    from jupyterhub_spaces import orm

    with hub.store.transaction() as db:
        return db.query(orm.Space).filter_by(slug=slug).one().id


def servers(hub, user: str) -> dict:
    r = hub.hub_api("GET", f"/users/{user}?include_stopped_servers=1")
    r.raise_for_status()
    return r.json()["servers"]


def wait_status(client, sid: int, want: str, hub, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = api_json(client.get(f"{API}spaces/{sid}/status"))
        if status.get("state") == want:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"space {sid} never became {want}: {status}\n{hub.log_tail()}")
        time.sleep(0.5)


def suspend_all(hub, user: str) -> None:
    for name, server in servers(hub, user).items():
        if server["ready"] or server["pending"]:
            hub.hub_api("DELETE", f"/users/{user}/servers/{name}")
    deadline = time.monotonic() + 120
    while any(s["ready"] or s["pending"] for s in servers(hub, user).values()):
        assert time.monotonic() < deadline, servers(hub, user)
        time.sleep(0.3)


async def pod_of(core, namespace: str, user: str, slug: str):
    pods = (await core.list_namespaced_pod(
        namespace, label_selector=f"spaces.jupyter.org/space={slug}")).items
    return [p for p in pods if (p.metadata.annotations or {}).get(
        "hub.jupyter.org/username") == user]


async def wait_gone(core, namespace, user, slug, timeout=60):
    deadline = time.monotonic() + timeout
    while await pod_of(core, namespace, user, slug):
        assert time.monotonic() < deadline, "the session pod was never deleted"
        await asyncio.sleep(0.3)


@pytest.fixture
def alice(kube_hub):
    suspend_all(kube_hub, "alice")
    yield kube_hub.token_session("alice")
    suspend_all(kube_hub, "alice")


async def test_alice_workbench_session_runs_as_a_pod_and_serves_jupyterlab(kube_hub, alice,
                                                                     kube_namespace):
    namespace, core, _net = kube_namespace
    sid = space_id(kube_hub, "store-footprint")
    r = alice.post(f"{API}spaces/{sid}/activate")
    assert r.status_code in (200, 202), r.text
    status = wait_status(alice, sid, "active", kube_hub)
    assert status["mode"] == "workbench"

    # JupyterLab through the proxy, served by the pod's process
    lab = kube_hub.browser("alice").get("/user/alice/store-footprint/lab")
    assert lab.status_code == 200 and "JupyterLab" in lab.text, lab.url

    [pod] = await pod_of(core, namespace, "alice", "store-footprint")
    assert pod.status.phase == "Running" and pod.status.pod_ip.startswith("127.")
    assert pod.metadata.labels["spaces.jupyter.org/mode"] == "workbench"
    [notebook] = [c for c in pod.spec.containers if c.name == "notebook"]
    # the space's profile ("small") sets the pod's resources
    assert int(notebook.resources.limits["memory"]) == 2 * 2**30  # KubeSpawner writes bytes
    assert float(notebook.resources.limits["cpu"]) == 1
    # her files asset is a read-only subPath of the assets claim
    volumes = {v.name: v for v in pod.spec.volumes}
    asset_mounts = [m for m in notebook.volume_mounts if "/assets/" in m.mount_path]
    assert [m.mount_path for m in asset_mounts] == ["/home/jovyan/assets/retail-sales/stores"]
    [mount] = asset_mounts
    assert mount.read_only and mount.sub_path == "retail-sales/stores"
    claim = volumes[mount.name].persistent_volume_claim
    assert claim.claim_name == ASSETS_CLAIM and claim.read_only
    # no sandbox parts in a workbench pod
    assert [c.name for c in pod.spec.containers] == ["notebook"]


async def test_one_active_space_holds_on_kubernetes(kube_hub, alice, kube_namespace):
    namespace, core, _net = kube_namespace
    first = space_id(kube_hub, "store-footprint")
    second = space_id(kube_hub, "retail-forecasting")
    assert alice.post(f"{API}spaces/{first}/activate").status_code in (200, 202)
    wait_status(alice, first, "active", kube_hub)
    # through the service ...
    r = alice.post(f"{API}spaces/{second}/activate")
    assert r.status_code == 409, r.text
    # ... and straight to the hub API with her own token
    direct = alice.post(f"/hub/api/users/alice/servers/retail-forecasting", json={})
    assert direct.status_code == 409, direct.text
    assert await pod_of(core, namespace, "alice", "retail-forecasting") == []
    assert len(await pod_of(core, namespace, "alice", "store-footprint")) == 1


async def test_suspend_deletes_the_pod_but_never_asset_or_shared_volumes(kube_hub, alice,
                                                                   kube_namespace):
    namespace, core, _net = kube_namespace
    sid = space_id(kube_hub, "store-footprint")
    assert alice.post(f"{API}spaces/{sid}/activate").status_code in (200, 202)
    wait_status(alice, sid, "active", kube_hub)
    [pod] = await pod_of(core, namespace, "alice", "store-footprint")
    claims = {v.persistent_volume_claim.claim_name for v in pod.spec.volumes
              if v.persistent_volume_claim}
    assert {ASSETS_CLAIM, SHARED_CLAIM} <= claims

    r = alice.post(f"{API}spaces/{sid}/suspend")
    assert r.status_code in (200, 202), r.text
    wait_status(alice, sid, "suspended", kube_hub)
    await wait_gone(core, namespace, "alice", "store-footprint")
    remaining = {c.metadata.name for c in (await core.list_namespaced_persistent_volume_claim(
        namespace)).items}
    # the shared volumes stay, and so does her working storage for this space
    assert {ASSETS_CLAIM, SHARED_CLAIM} <= remaining
    assert claims - {ASSETS_CLAIM, SHARED_CLAIM} <= remaining


async def test_bob_sandbox_pod_has_guacd_sidecar_and_network_policy(kube_hub, kube_namespace):
    namespace, core, net = kube_namespace
    bob = kube_hub.token_session("bob")
    suspend_all(kube_hub, "bob")
    sid = space_id(kube_hub, "retail-forecasting")
    r = bob.post(f"{API}spaces/{sid}/activate")
    assert r.status_code in (200, 202), r.text
    deadline = time.monotonic() + 120
    while not await pod_of(core, namespace, "bob", "retail-forecasting"):
        assert time.monotonic() < deadline, kube_hub.log_tail()
        time.sleep(0.3)
    try:
        [pod] = await pod_of(core, namespace, "bob", "retail-forecasting")
        assert pod.metadata.labels["spaces.jupyter.org/mode"] == "sandbox"
        containers = {c.name: c for c in pod.spec.containers}
        assert "guacd" in containers
        assert containers["guacd"].image == GUACD_IMAGE
        assert containers["notebook"].image == SANDBOX_IMAGE
        # retail-forecasting selected jupyterlab and sqllab; this site offers no SQL Lab
        env = {e.name: e.value for e in containers["notebook"].env}
        assert env["SPACES_TOOLS"] == "jupyterlab"
        assert env["SPACES_MODE"] == "sandbox"
        policies = (await net.list_namespaced_network_policy(namespace)).items
        selecting = [p for p in policies
                     if all(pod.metadata.labels.get(k) == v
                            for k, v in (p.spec.pod_selector.match_labels or {}).items())]
        assert len(selecting) == 1
        [policy] = selecting
        assert set(policy.spec.policy_types) == {"Ingress", "Egress"}
        # nothing open to the world: every egress rule names its peers
        assert all(rule.to for rule in policy.spec.egress)
        assert not any(peer.ip_block and peer.ip_block.cidr == "0.0.0.0/0"
                       for rule in policy.spec.egress for peer in rule.to)
    finally:
        suspend_all(kube_hub, "bob")
    await wait_gone(core, namespace, "bob", "retail-forecasting")
    # the policy goes with the session
    names = {p.metadata.name for p in (await net.list_namespaced_network_policy(namespace)).items}
    assert pod.metadata.name not in names
