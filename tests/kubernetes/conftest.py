"""Fixtures for tests against a real Kubernetes API server.

- ``control_plane`` (session): etcd + kube-apiserver v1.20.2 on random localhost ports
  (``cluster.ControlPlane``), with an admin bearer token in a kubeconfig file. Tests
  using it skip, saying how to build the binary, when it is not built; under CI
  (``CI=true``) a missing binary fails instead, since the setup script must build it.
- ``kubeconfig`` (session): path of that kubeconfig file.
- ``kubelet`` (session): the test kubelet (``kubelet.py``) as a process, its node Ready;
  containers of the ``guacamole/guacd`` image run an idle stand-in. It also binds
  pods for Zero to JupyterHub's ``user-scheduler`` (that chart's own scheduler, which
  the test cluster does not run).
- ``kube_api`` (session): a ``kubernetes_asyncio`` ApiClient for the control plane.
- ``namespace`` (function): a fresh namespace, deleted after the test.
- ``kubelet_log`` (session): path of the kubelet's log, for failure messages.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cluster import ControlPlane, missing_binaries, start_kubelet  # noqa: E402


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        message = "a real Kubernetes API server is not available: missing " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    plane = ControlPlane(tmp_path_factory.mktemp("kube")).start()
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def kubeconfig(control_plane) -> Path:
    return control_plane.kubeconfig


@pytest.fixture(scope="session")
def kubelet_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("kubelet")


@pytest.fixture(scope="session")
def kubelet_log(kubelet_root) -> Path:
    return kubelet_root / "kubelet.log"


@pytest.fixture(scope="session")
async def kube_api(kubeconfig):
    from kubernetes_asyncio import client, config

    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig),
                                  client_configuration=configuration)
    async with client.ApiClient(configuration) as api:
        yield api


@pytest.fixture(scope="session")
async def kubelet(kubeconfig, kubelet_root, kube_api):
    from kubernetes_asyncio import client

    # guacd is not installed here: its sidecar container runs an idle stand-in, so
    # sandbox pods get to Running (the desktop's own processes run for real)
    idle = f"{sys.executable} -c 'import signal; signal.pause()'"
    proc = start_kubelet(kubeconfig, kubelet_root, stand_ins={"guacamole/guacd": idle},
                         schedulers=("user-scheduler",))
    core = client.CoreV1Api(kube_api)
    for _ in range(300):
        if proc.poll() is not None:
            pytest.fail("the test kubelet exited:\n" + (kubelet_root / "kubelet.log").read_text())
        nodes = (await core.list_node()).items
        if any(c.type == "Ready" and c.status == "True"
               for n in nodes for c in (n.status.conditions or [])):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the test kubelet never registered a Ready node")
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except Exception:
        proc.kill()


@pytest.fixture
async def namespace(kube_api):
    from kubernetes_asyncio import client

    core = client.CoreV1Api(kube_api)
    name = f"spaces-test-{secrets.token_hex(4)}"
    await core.create_namespace({"metadata": {"name": name}})
    yield name
    # Without a controller manager a namespace never finishes terminating; delete
    # its pods so the kubelet stops their processes, then the namespace itself.
    await core.delete_collection_namespaced_pod(name)
    await core.delete_namespace(name)
