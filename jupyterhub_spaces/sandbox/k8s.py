"""Kubernetes pieces of a Sandbox session (pure builders, plain dicts).

* :func:`make_guacd_sidecar`: guacd from the official image as a second container of
  the session pod, listening on the pod's loopback only (the gateway in the main
  container reaches it at 127.0.0.1; nothing outside the pod can);
* :func:`make_sandbox_network_policy`: ingress only to the gateway's port and only
  from the proxy; egress only to DNS, the hub's API and the space databases.

The spawner adds the sidecar to the pod (``extra_containers``) and creates the policy
next to it; :func:`gateway_args` tells the gateway to use the sidecar.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

GUACD_IMAGE = "guacamole/guacd:1.5.5"
#: guacd before 1.5.4 can be attacked by a malicious VNC server (CVE-2023-43826);
#: 1.5.5 is the release we test the protocol against.
MIN_GUACD_VERSION = (1, 5, 5)
GUACD_PORT = 4822
# Where the official images install guacd (the prefix changed between releases).
GUACD_PATHS = ("/opt/guacamole/sbin/guacd", "/usr/local/guacamole/sbin/guacd")


def guacd_image_version(image: str) -> tuple[int, ...] | None:
    """The version in an image reference's tag (``guacamole/guacd:1.5.5`` ->
    ``(1, 5, 5)``), or None when the tag is not a version."""
    name = image.split("@", 1)[0]
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+.].*)?", tag)
    return tuple(int(x) for x in m.groups()) if m else None


def check_guacd_image(image: str) -> str:
    """``image`` if it is a guacd of at least :data:`MIN_GUACD_VERSION`; raises
    ValueError saying what to use otherwise."""
    version = guacd_image_version(image)
    if version is None:
        raise ValueError(
            f"guacd image {image!r} has no version tag: use a tag such as {GUACD_IMAGE!r} "
            "(a digest may follow it) so its version can be checked"
        )
    if version < MIN_GUACD_VERSION:
        wanted = ".".join(map(str, MIN_GUACD_VERSION))
        raise ValueError(
            f"guacd image {image!r} is older than {wanted}: older guacd releases can be "
            f"attacked by a malicious VNC server (CVE-2023-43826); use {GUACD_IMAGE!r} or later"
        )
    return image


def make_guacd_sidecar(
    image: str = GUACD_IMAGE,
    port: int = GUACD_PORT,
    recording_mount: Mapping | None = None,
    resources: Mapping | None = None,
    log_level: str = "info",
) -> dict:
    """The guacd container of a sandbox pod, bound to 127.0.0.1.

    ``recording_mount``: a volume mount where guacd writes session recordings (the
    gateway's ``recording_path`` must point into it).
    """
    check_guacd_image(image)
    launch = " ".join(
        f'[ -x {p} ] && exec {p} -b 127.0.0.1 -l {int(port)} -L "$GUACD_LOG_LEVEL" -f;' for p in GUACD_PATHS
    )
    container = {
        "name": "guacd",
        "image": image,
        "command": ["/bin/sh", "-c", f'{launch} echo "guacd not found in the image" >&2; exit 1'],
        "env": [{"name": "GUACD_LOG_LEVEL", "value": log_level}],
        # no "ports": the port is on the pod's loopback only, nothing to expose
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": dict(resources or {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}}),
        "readinessProbe": {
            "tcpSocket": {"host": "127.0.0.1", "port": int(port)},
            "periodSeconds": 5,
        },
    }
    if recording_mount:
        container["volumeMounts"] = [dict(recording_mount)]
    return container


def gateway_args(port: int = GUACD_PORT) -> list[str]:
    """Gateway options that point it at the sidecar instead of starting guacd."""
    return ["--SandboxSettings.guacd_host=127.0.0.1", f"--SandboxSettings.guacd_port={int(port)}"]


def make_sandbox_network_policy(
    name: str,
    namespace: str,
    pod_labels: Mapping[str, str],
    gateway_port: int = 8888,
    proxy_peers: Iterable[Mapping] = ({"podSelector": {"matchLabels": {"component": "proxy"}}},),
    hub_peers: Iterable[Mapping] = ({"podSelector": {"matchLabels": {"component": "hub"}}},),
    hub_port: int = 8081,
    database_peers: Iterable[tuple[Mapping, int]] = (),
    dns_port: int = 53,
) -> dict:
    """The NetworkPolicy of a sandbox pod.

    Ingress: only the gateway's port, only from ``proxy_peers``. Egress: DNS, the
    hub's API at ``hub_port`` on ``hub_peers`` (the gateway checks the user's login
    there), and each ``(peer, port)`` of ``database_peers``; nothing else, so data
    cannot leave by the network.
    """
    egress = [
        {
            "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"protocol": "UDP", "port": dns_port}, {"protocol": "TCP", "port": dns_port}],
        },
        {"to": [dict(p) for p in hub_peers], "ports": [{"protocol": "TCP", "port": int(hub_port)}]},
    ]
    for peer, port in database_peers:
        egress.append({"to": [dict(peer)], "ports": [{"protocol": "TCP", "port": int(port)}]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(pod_labels)},
        "spec": {
            "podSelector": {"matchLabels": dict(pod_labels)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [dict(p) for p in proxy_peers],
                    "ports": [{"protocol": "TCP", "port": int(gateway_port)}],
                }
            ],
            "egress": egress,
        },
    }


def database_peer(cidr_or_selector: str | Mapping, port: int = 5432) -> tuple[dict, int]:
    """A ``database_peers`` entry from an IP block (``"10.0.3.4/32"``) or a peer dict."""
    if isinstance(cidr_or_selector, str):
        return {"ipBlock": {"cidr": cidr_or_selector}}, port
    return dict(cidr_or_selector), port
