"""Every object the space spawner builds is accepted by a real kube-apiserver.

kube-apiserver 1.20 has no server-side field validation: it drops a field it does not
know instead of refusing the object. So each test reads the object back and checks
that every field it sent is still there; a rejection (422) fails the create itself.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

pytestmark = pytest.mark.slow

objects = pytest.importorskip("jupyterhub_spaces.objects")


_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "m": Decimal("0.001"),
             "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "": 1}


def _quantity(value) -> Decimal:
    """A Kubernetes quantity as a number ("2G", "500m", 4.0)."""
    text = str(value)
    number = text.rstrip("KMGTikm")
    return Decimal(number) * _SUFFIXES[text[len(number):]]


def dropped_fields(sent, stored, path="", quantities=False) -> list[str]:
    """Paths of values in ``sent`` that ``stored`` does not hold (defaults may be added)."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [path or "<root>"]
        out = []
        for key, value in sent.items():
            if value is None or value == {} or value == []:
                continue  # the server omits empty values
            if key not in stored:
                out.append(f"{path}.{key}")
                continue
            out += dropped_fields(value, stored[key], f"{path}.{key}",
                                  quantities or key in ("limits", "requests"))
        return out
    if isinstance(sent, list):
        if not isinstance(stored, list) or len(stored) < len(sent):
            return [path]
        out = []
        for i, (a, b) in enumerate(zip(sent, stored)):
            out += dropped_fields(a, b, f"{path}[{i}]", quantities)
        return out
    if quantities:
        return [] if _quantity(sent) == _quantity(stored) else [f"{path}={sent!r}"]
    return [] if sent == stored or str(sent) == str(stored) else [f"{path}={sent!r}!={stored!r}"]


async def create_and_read_back(api, kind: str, namespace: str, body: dict) -> dict:
    """Create ``body`` and return the stored object as plain JSON."""
    from kubernetes_asyncio import client

    core = client.CoreV1Api(api)
    net = client.NetworkingV1Api(api)
    name = body["metadata"]["name"]
    create, read = {
        "Pod": (core.create_namespaced_pod, core.read_namespaced_pod),
        "PersistentVolumeClaim": (core.create_namespaced_persistent_volume_claim,
                                  core.read_namespaced_persistent_volume_claim),
        "NetworkPolicy": (net.create_namespaced_network_policy,
                          net.read_namespaced_network_policy),
    }[kind]
    await create(namespace, body)
    response = await read(name, namespace, _preload_content=False)
    return await response.json()


def session_pod(namespace: str, mode: str) -> dict:
    """A session pod as KubeSpaceSpawner assembles it, built with KubeSpawner's own
    make_pod and the space's pieces from objects.py."""
    from kubernetes_asyncio.client import ApiClient
    from kubespawner.objects import make_pod

    from jupyterhub_spaces.session import AssetMount

    home = "/home/jovyan"
    mounts = [
        AssetMount(asset_id=11, product="retail", asset="stores",
                   source="retail/stores", target="assets/retail/stores"),
        AssetMount(asset_id=12, product="weather", asset="daily",
                   source="weather/daily weather", target="assets/weather/daily"),
    ]
    profile = {
        "display_name": "Large", "cpu_guarantee": 2, "cpu_limit": 4,
        "mem_guarantee": "8G", "mem_limit": "16G",
        "node_selector": {"node.kubernetes.io/instance-type": "m5.4xlarge"},
        "tolerations": [{"key": "spaces", "operator": "Equal", "value": "large",
                         "effect": "NoSchedule"}],
    }
    resources = objects.make_profile_resources(profile)
    asset_volumes, asset_mounts = objects.make_asset_volumes(
        mounts, {"persistentVolumeClaim": {"claimName": "spaces-assets"}}, home)
    home_volume, home_mount = objects.make_home_volume("space-alice--retail", home)
    extra = {}
    if mode == "sandbox":
        extra["extra_containers"] = [{
            "name": "guacd", "image": "guacamole/guacd:1.5.5",
            "ports": [{"containerPort": 4822, "name": "guacd"}],
        }]
    pod = make_pod(
        name=f"jupyter-alice--{mode}",
        cmd=["jupyterhub-singleuser"],
        port=8888,
        image="jupyterhub-spaces/workbench:0.1.0",
        labels={"component": "singleuser-server",
                **objects.make_session_labels("space-3", 3, mode)},
        volumes=[home_volume, *asset_volumes],
        volume_mounts=[home_mount, *asset_mounts],
        node_selector=resources["node_selector"],
        tolerations=resources["tolerations"],
        cpu_limit=resources["cpu_limit"],
        cpu_guarantee=resources["cpu_guarantee"],
        mem_limit=resources["mem_limit"],
        mem_guarantee=resources["mem_guarantee"],
        env={"JUPYTERHUB_USER": "alice"},
        **extra,
    )
    body = ApiClient().sanitize_for_serialization(pod)
    body["metadata"]["namespace"] = namespace
    return body


@pytest.mark.parametrize("mode", ["workbench", "sandbox"])
async def test_session_pod_is_accepted_whole(kube_api, namespace, mode):
    body = session_pod(namespace, mode)
    stored = await create_and_read_back(kube_api, "Pod", namespace, body)
    assert dropped_fields(body, stored) == []
    mounts = stored["spec"]["containers"][0]["volumeMounts"]
    assets = [m for m in mounts if m["mountPath"].startswith("/home/jovyan/assets/")]
    assert len(assets) == 2 and all(m["readOnly"] for m in assets)
    assert stored["spec"]["containers"][0]["resources"]["limits"]["memory"] == "16G"
    names = [c["name"] for c in stored["spec"]["containers"]]
    assert ("guacd" in names) == (mode == "sandbox")


async def test_sandbox_network_policy_is_accepted_whole(kube_api, namespace):
    labels = objects.make_session_labels("space-3", 3, "sandbox")
    body = objects.make_network_policy(
        "jupyter-bob--space-3", namespace, labels,
        ingress_from=[{"podSelector": {"matchLabels": {"component": "proxy"}}}],
        egress_to=[{"podSelector": {"matchLabels": {"component": "hub"}}},
                   {"ipBlock": {"cidr": "10.20.0.5/32"}}],
    )
    stored = await create_and_read_back(kube_api, "NetworkPolicy", namespace, body)
    assert dropped_fields(body, stored) == []
    assert stored["spec"]["policyTypes"] == ["Ingress", "Egress"]


async def test_working_storage_claim_is_accepted_whole(kube_api, namespace):
    from kubernetes_asyncio.client import ApiClient
    from kubespawner.objects import make_pvc

    pvc = make_pvc(name="space-alice--space-3", storage_class=None,
                   access_modes=["ReadWriteOnce"], selector=None, storage="10Gi",
                   labels=objects.make_session_labels("space-3", 3, "workbench"))
    body = ApiClient().sanitize_for_serialization(pvc)
    stored = await create_and_read_back(kube_api, "PersistentVolumeClaim", namespace, body)
    assert dropped_fields(body, stored) == []


async def test_a_misspelt_field_is_caught_by_the_read_back(kube_api, namespace):
    """The check above is not vacuous: 1.20 silently drops an unknown field."""
    body = session_pod(namespace, "workbench")
    body["metadata"]["name"] = "typo"
    body["spec"]["containers"][0]["volumeMountz"] = [{"name": "x", "mountPath": "/x"}]
    stored = await create_and_read_back(kube_api, "Pod", namespace, body)
    assert dropped_fields(body, stored) == [".spec.containers[0].volumeMountz"]
