"""Kubernetes manifests of space sessions, built offline (a dummy kubeconfig, no
cluster) by KubeSpaceSpawner and the pure builders of ``objects.py``, and validated
against the Kubernetes OpenAPI schema of a current version."""

from __future__ import annotations

import types

import pytest

pytest.importorskip("kubespawner")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

from kubernetes_asyncio.client import ApiClient  # noqa: E402
from traitlets.config import Config  # noqa: E402

from jupyterhub_spaces import objects, policy  # noqa: E402
from jupyterhub_spaces.session import AssetMount, SessionContext  # noqa: E402
from jupyterhub_spaces.settings import DEFAULT_PROFILES, SpacesSettings  # noqa: E402
from jupyterhub_spaces.session import asset_mounts, profile_env  # noqa: E402
from jupyterhub_spaces.spawner import KubeSpaceSpawner  # noqa: E402
from jupyterhub_spaces.session import AssetInfo  # noqa: E402

K8S_VERSION = "1.33.0"

DUMMY_KUBECONFIG = """
apiVersion: v1
kind: Config
clusters:
- name: offline
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: offline
  user: {token: "not-a-real-token"}
contexts:
- name: offline
  context: {cluster: offline, user: offline, namespace: spaces}
current-context: offline
"""

ASSETS = (
    AssetInfo(3, "stores", "files", "retail-sales/stores", "retail-sales"),
    AssetInfo(4, "daily sales/2024", "files", "retail-sales/daily", "retail-sales"),
    AssetInfo(5, "daily-weather", "table", "weather_daily", "weather"),
)


@pytest.fixture(autouse=True)
def dummy_kubeconfig(tmp_path, monkeypatch):
    path = tmp_path / "kubeconfig"
    path.write_text(DUMMY_KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    # the default location is read when kubernetes_asyncio is imported
    from kubernetes_asyncio.config import kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))


def as_dict(obj) -> dict:
    return ApiClient().sanitize_for_serialization(obj)


def validate(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def context(mode: policy.Mode, profile: str = "medium", workers: int = 3) -> SessionContext:
    spec = policy.SpaceSpec(id=7, owner="alice")
    decision = policy.Decision("alice", 7, mode, policy.Role.owner)
    settings = SpacesSettings(data_root="/data")
    return SessionContext(
        user="alice",
        space_id=7,
        slug="retail-forecasting",
        display_name="Retail forecasting",
        spec=spec,
        decision=decision,
        settings=settings,
        tools=("jupyterlab",),
        profile_name=profile,
        profile=dict(DEFAULT_PROFILES[profile]),
        workers=workers,
        assets=ASSETS,
        mounts=tuple(
            AssetMount(m.asset_id, m.product, m.asset, m.source[len("/data/"):], m.target)
            for m in asset_mounts(list(ASSETS), "/data")
        ),
        backend="kubernetes",
    )


WORKBENCH_IMAGE = "quay.io/jupyterhub-spaces/workbench:test"
SANDBOX_IMAGE = "quay.io/jupyterhub-spaces/sandbox:test"


def make_spawner(config: Config | None = None) -> KubeSpaceSpawner:
    cfg = config or Config()
    cfg.KubeSpaceSpawner.assets_volume = {"persistentVolumeClaim": {"claimName": "spaces-assets"}}
    cfg.KubeSpaceSpawner.image = WORKBENCH_IMAGE
    cfg.KubeSpaceSpawner.sandbox_image = SANDBOX_IMAGE
    cfg.SpaceDatabases.backend = "postgresql"
    spawner = KubeSpaceSpawner(_mock=True, config=cfg)
    spawner.user.name = "alice"
    spawner.orm_spawner = types.SimpleNamespace(
        name="space-7", display_name="Retail forecasting", server=None,
        user_options={}, state={},
    )
    spawner.pod_name = "jupyter-alice--space-7"
    spawner.pvc_name = "space-alice--space-7"
    spawner.api_token = "session-token"
    return spawner


async def built(spawner: KubeSpaceSpawner, ctx: SessionContext) -> dict:
    spawner._ctx = ctx
    spawner._apply_profile(ctx)
    await spawner._prepare_backend(ctx)
    spawner._session_env = profile_env(ctx.profile_name, ctx.profile, ctx.workers)
    return as_dict(await spawner.get_pod_manifest())


async def test_workbench_pod_has_profile_home_and_read_only_assets():
    spawner = make_spawner()
    pod = await built(spawner, context(policy.Mode.workbench))
    validate(pod)

    container = pod["spec"]["containers"][0]
    resources = container["resources"]
    GiB = 1024**3  # KubeSpawner reads "4G" as 4 GiB
    assert resources["limits"] == {"cpu": 2.0, "memory": 4 * GiB}
    assert resources["requests"] == {"cpu": 1.0, "memory": 2 * GiB}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SPACES_PROFILE"] == "medium" and env["SPACES_WORKERS"] == "3"

    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    home = mounts["/home/jovyan"]
    stores = mounts["/home/jovyan/assets/retail-sales/stores"]
    daily = mounts["/home/jovyan/assets/retail-sales/daily sales-2024"]
    assert stores["readOnly"] is True and stores["subPath"] == "retail-sales/stores"
    assert daily["readOnly"] is True and daily["subPath"] == "retail-sales/daily"
    assert not home.get("readOnly")
    # a table asset is not a mount
    assert not any("daily-weather" in path for path in mounts)

    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[home["name"]]["persistentVolumeClaim"] == {"claimName": "space-alice--space-7"}
    for mount in (stores, daily):
        claim = volumes[mount["name"]]["persistentVolumeClaim"]
        assert claim == {"claimName": "spaces-assets", "readOnly": True}

    labels = pod["metadata"]["labels"]
    # the server name: a slug is unique per owner only
    assert labels["spaces.jupyter.org/space"] == "space-7"
    assert labels["spaces.jupyter.org/mode"] == "workbench"
    assert spawner.network_policy(spawner._ctx) is None


async def test_profile_scheduling_reaches_the_pod():
    cfg = Config()
    spawner = make_spawner(cfg)
    ctx = context(policy.Mode.workbench, "large", 8)
    ctx.profile["node_selector"] = {"node.kubernetes.io/instance-type": "m5.4xlarge"}
    ctx.profile["tolerations"] = [
        {"key": "spaces/large", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    ]
    pod = await built(spawner, ctx)
    validate(pod)
    assert pod["spec"]["nodeSelector"] == {"node.kubernetes.io/instance-type": "m5.4xlarge"}
    assert {"key": "spaces/large", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in pod["spec"]["tolerations"]
    assert pod["spec"]["containers"][0]["resources"]["limits"]["memory"] == 16 * 1024**3


async def test_working_storage_claim_is_valid_and_protected_claims_are_never_deleted():
    spawner = make_spawner()
    await built(spawner, context(policy.Mode.workbench))
    validate(as_dict(spawner.get_pvc_manifest()))

    deleted = []

    async def fake_delete(name, timeout):  # the only call that deletes a claim
        deleted.append(name)
        return True

    spawner._make_delete_pvc_request = fake_delete
    spawner.delete_pvc = True
    spawner.pvc_name = "spaces-assets"
    await spawner.delete_forever()
    assert deleted == []

    with pytest.raises(Exception, match="protected shared claim"):
        await spawner._prepare_backend(context(policy.Mode.workbench))

    spawner.pvc_name = "space-alice--space-7"
    await spawner.delete_forever()
    assert deleted == ["space-alice--space-7"]


async def test_sandbox_pod_runs_the_gateway_and_gets_a_network_policy():
    spawner = make_spawner()
    ctx = context(policy.Mode.sandbox)
    pod = await built(spawner, ctx)
    validate(pod)
    args = pod["spec"]["containers"][0]["args"]
    assert "jupyterhub_spaces.sandbox.gateway" in args
    assert pod["metadata"]["labels"]["spaces.jupyter.org/mode"] == "sandbox"

    netpol = spawner.network_policy(ctx)
    validate(netpol)
    assert netpol["spec"]["podSelector"]["matchLabels"]["spaces.jupyter.org/mode"] == "sandbox"
    assert set(netpol["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    peers = [p for rule in netpol["spec"]["egress"] for p in rule["to"]]
    assert {"podSelector": {"matchLabels": {"component": "hub"}}} in peers
    # in: only the session's own port
    assert [r["ports"] for r in netpol["spec"]["ingress"]] == [[{"protocol": "TCP", "port": spawner.port}]]


def test_asset_locations_cannot_leave_the_volume():
    bad = [AssetMount(1, "p", "a", "../../etc", "assets/p/a")]
    with pytest.raises(ValueError, match="outside"):
        objects.make_asset_volumes(bad, {"nfs": {"server": "nfs", "path": "/x"}}, "/home/jovyan")
    with pytest.raises(ValueError, match="outside"):
        asset_mounts([AssetInfo(1, "a", "files", "../etc", "p")], "/data")


@pytest.mark.parametrize(
    "source, expected",
    [
        ({"persistentVolumeClaim": {"claimName": "c"}}, {"persistentVolumeClaim": {"claimName": "c", "readOnly": True}}),
        ({"nfs": {"server": "s", "path": "/p"}}, {"nfs": {"server": "s", "path": "/p", "readOnly": True}}),
    ],
)
def test_asset_volumes_are_read_only_whatever_the_source(source, expected):
    mounts = [AssetMount(9, "p", "a", "p/a", "assets/p/a")]
    volumes, volume_mounts = objects.make_asset_volumes(mounts, source, "/home/jovyan")
    assert volumes == [{"name": "asset-9", **expected}]
    assert volume_mounts == [
        {"name": "asset-9", "mountPath": "/home/jovyan/assets/p/a", "subPath": "p/a", "readOnly": True}
    ]
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
        "spec": {"containers": [{"name": "c", "image": "i", "volumeMounts": volume_mounts}], "volumes": volumes},
    }
    validate(pod)


# ---- Zero to JupyterHub's settings meet the spawner's ------------------------------

async def test_each_mode_runs_its_own_image_on_the_same_spawner():
    spawner = make_spawner()
    sandbox = await built(spawner, context(policy.Mode.sandbox))
    assert sandbox["spec"]["containers"][0]["image"] == SANDBOX_IMAGE
    workbench = await built(spawner, context(policy.Mode.workbench))
    assert workbench["spec"]["containers"][0]["image"] == WORKBENCH_IMAGE


async def test_a_sandbox_start_without_a_sandbox_image_is_refused():
    cfg = Config()
    spawner = make_spawner(cfg)
    spawner.sandbox_image = ""
    with pytest.raises(Exception, match="sandbox_image") as err:
        await built(spawner, context(policy.Mode.sandbox))
    assert err.value.status_code == 503


async def test_sqlite_space_databases_are_refused_on_kubernetes():
    cfg = Config()
    spawner = make_spawner(cfg)
    spawner.config.SpaceDatabases.backend = "sqlite"
    with pytest.raises(Exception, match="PostgreSQL") as err:
        await built(spawner, context(policy.Mode.workbench))
    assert err.value.status_code == 500


# the home volume Zero to JupyterHub 4.2.0 configures by default (singleuser.storage
# type dynamic), and its static alternative: one claim shared by every server
Z2JH_DYNAMIC = (
    [{"name": "volume-{user_server}", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}],
    [{"mountPath": "/home/jovyan", "name": "volume-{user_server}", "subPath": None}],
)
Z2JH_STATIC = (
    [{"name": "home", "persistentVolumeClaim": {"claimName": "home-nfs"}}],
    [{"mountPath": "/home/jovyan/", "name": "home", "subPath": "{username}"}],
)


@pytest.mark.parametrize("site", [Z2JH_DYNAMIC, Z2JH_STATIC], ids=["dynamic", "static"])
async def test_site_home_volume_gives_way_to_the_space_home(site):
    cfg = Config()
    volumes, mounts = site
    cfg.KubeSpawner.volumes = volumes + [{"name": "shared", "persistentVolumeClaim": {
        "claimName": "team-shared"}}]
    cfg.KubeSpawner.volume_mounts = mounts + [{"name": "shared", "mountPath": "/srv/shared"}]
    spawner = make_spawner(cfg)
    pod = await built(spawner, context(policy.Mode.workbench))
    validate(pod)
    container = pod["spec"]["containers"][0]
    paths = [m["mountPath"] for m in container["volumeMounts"]]
    # the API server refuses two mounts at one path
    assert len(paths) == len(set(paths))
    [home] = [m for m in container["volumeMounts"] if m["mountPath"] == "/home/jovyan"]
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName")
              for v in pod["spec"]["volumes"]}
    # a home per space: a home shared between spaces would carry data out of a Sandbox
    assert claims[home["name"]] == "space-alice--space-7"
    assert "home-nfs" not in claims.values()
    assert claims["shared"] == "team-shared" and "/srv/shared" in paths


@pytest.mark.parametrize(
    "mounts, expected_mounts, expected_volumes",
    [
        ([("a", "/home/jovyan")], [], []),
        ([("a", "/home/jovyan/")], [], []),
        ([("a", "/home/jovyan/work")], [("a", "/home/jovyan/work")], ["a"]),
        # a volume another mount still uses stays
        ([("a", "/home/jovyan"), ("a", "/data")], [("a", "/data")], ["a"]),
        ([("a", "/home/jovyan"), ("b", "/data")], [("b", "/data")], ["b"]),
    ],
)
def test_without_mounts_at(mounts, expected_mounts, expected_volumes):
    volumes = [{"name": n, "emptyDir": {}} for n in sorted({n for n, _ in mounts})]
    kept_volumes, kept_mounts = objects.without_mounts_at(
        volumes, [{"name": n, "mountPath": p} for n, p in mounts], "/home/jovyan")
    assert [(m["name"], m["mountPath"]) for m in kept_mounts] == expected_mounts
    assert [v["name"] for v in kept_volumes] == expected_volumes
