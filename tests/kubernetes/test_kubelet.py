"""The test kubelet turns pods on the real API server into local processes."""

from __future__ import annotations

import asyncio
import sys
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.slow

# A tiny HTTP server answering with one environment variable, bound to 0.0.0.0 as a
# container would bind inside its pod.
SERVER = (
    "import http.server, os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = os.environ['GREETING'].encode()\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
    "http.server.HTTPServer(('0.0.0.0', 8080), H).serve_forever()\n"
)


async def wait_for(predicate, timeout=30, interval=0.2):
    for _ in range(int(timeout / interval)):
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


async def test_pod_runs_as_local_process_and_stops_on_delete(kube_api, kubelet, namespace):
    from kubernetes_asyncio import client
    from kubernetes_asyncio.client.exceptions import ApiException

    core = client.CoreV1Api(kube_api)
    await core.create_namespaced_secret(namespace, {
        "metadata": {"name": "greeting"}, "stringData": {"text": "hello from a secret"},
    })
    await core.create_namespaced_pod(namespace, {
        "metadata": {"name": "web"},
        "spec": {"containers": [{
            "name": "web", "image": "python:3",
            "command": [sys.executable, "-c", SERVER],
            "env": [{"name": "GREETING", "valueFrom": {
                "secretKeyRef": {"name": "greeting", "key": "text"}}}],
        }]},
    })

    async def running():
        pod = await core.read_namespaced_pod("web", namespace)
        return pod if pod.status.phase == "Running" else None

    pod = await wait_for(running)
    assert pod.spec.node_name == "spaces-test-node"
    assert pod.status.pod_ip.startswith("127.")
    assert all(cs.ready for cs in pod.status.container_statuses)
    ready = {c.type: c.status for c in pod.status.conditions}
    assert ready["Ready"] == "True"

    url = f"http://{pod.status.pod_ip}:8080/"

    async def answers():
        try:
            return await asyncio.to_thread(fetch, url)
        except OSError:
            return None

    assert await wait_for(answers) == "hello from a secret"

    await core.delete_namespaced_pod("web", namespace)

    async def gone():
        try:
            await core.read_namespaced_pod("web", namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    await wait_for(gone)
    with pytest.raises(urllib.error.URLError):
        fetch(url)


async def test_pod_whose_node_selector_does_not_match_stays_pending(kube_api, kubelet,
                                                                     namespace):
    from kubernetes_asyncio import client

    core = client.CoreV1Api(kube_api)
    await core.create_namespaced_pod(namespace, {
        "metadata": {"name": "picky"},
        "spec": {
            "nodeSelector": {"node.kubernetes.io/instance-type": "gpu-xxl"},
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "60"]}],
        },
    })
    # The kubelet handles events in order: once a later, matching pod is bound,
    # the picky one has been seen and passed over.
    await core.create_namespaced_pod(namespace, {
        "metadata": {"name": "easy"},
        "spec": {"containers": [{"name": "c", "image": "busybox",
                                 "command": [sys.executable, "-c", "import time; time.sleep(60)"]}]},
    })

    async def easy_bound():
        return (await core.read_namespaced_pod("easy", namespace)).spec.node_name

    assert await wait_for(easy_bound) == "spaces-test-node"
    pod = await core.read_namespaced_pod("picky", namespace)
    assert pod.spec.node_name is None
    assert pod.status.phase == "Pending"
