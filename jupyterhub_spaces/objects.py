"""Pure builders of the Kubernetes pieces of a space session.

Plain dicts in, plain dicts out (the shapes of the Kubernetes API), no client calls:
:class:`~jupyterhub_spaces.spawner.KubeSpaceSpawner` gathers settings and calls these,
and tests validate what they return against the Kubernetes schemas offline. A Sandbox
pod adds two: the guacd sidecar (:func:`make_guacd_sidecar`, listening on the pod's
loopback only, where the gateway reaches it) and the NetworkPolicy that closes the pod
off (:func:`make_network_policy`).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping

LABEL_PREFIX = "spaces.jupyter.org"

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


def label_value(value: str) -> str:
    """``value`` as a valid label value (63 characters of [A-Za-z0-9._-], alphanumeric ends)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", value)[:63].strip("._-")
    return cleaned


def make_session_labels(server_name: str, space_id: int, mode: str) -> dict[str, str]:
    """Labels that mark a pod as a space session (used by NetworkPolicies and ops);
    ``server_name`` is the session's server name (``space-<id>``)."""
    return {
        f"{LABEL_PREFIX}/space": label_value(server_name),
        f"{LABEL_PREFIX}/space-id": str(space_id),
        f"{LABEL_PREFIX}/mode": label_value(mode),
    }


def make_profile_resources(profile: Mapping) -> dict:
    """KubeSpawner trait values for a machine profile: resources and scheduling."""
    out: dict = {
        "node_selector": dict(profile.get("node_selector") or {}),
        "tolerations": [dict(t) for t in profile.get("tolerations") or []],
    }
    for key in ("cpu_limit", "cpu_guarantee"):
        value = profile.get(key)
        out[key] = float(value) if value not in (None, "") else None
    for key in ("mem_limit", "mem_guarantee"):
        value = profile.get(key)
        out[key] = str(value) if value not in (None, "") else None
    return out


def make_home_volume(claim_name: str, mount_path: str) -> tuple[dict, dict]:
    """The session's working storage: its own PVC mounted as its home."""
    volume = {"name": "space-home", "persistentVolumeClaim": {"claimName": claim_name}}
    mount = {"name": "space-home", "mountPath": mount_path}
    return volume, mount


def without_mounts_at(
    volumes: list[Mapping], mounts: list[Mapping], path: str
) -> tuple[list[dict], list[dict]]:
    """``volumes`` and ``mounts`` less every mount at ``path`` (and the volumes only
    those mounts used).

    The session's own home goes there: a site-wide volume at the same path (Zero to
    JupyterHub's ``singleuser.storage``) would make two mounts at one path, which the
    API server rejects, and a home shared between a user's spaces would carry data out
    of a Sandbox.
    """
    path = posixpath.normpath(path)
    kept = [dict(m) for m in mounts if posixpath.normpath(m.get("mountPath", "")) != path]
    dropped = {m.get("name") for m in mounts} - {m.get("name") for m in kept}
    return [dict(v) for v in volumes if v.get("name") not in dropped], kept


def _read_only_source(source: Mapping) -> dict:
    """A copy of a volume source with ``readOnly`` set where the source type has it."""
    source = {k: dict(v) if isinstance(v, Mapping) else v for k, v in source.items()}
    for kind in ("persistentVolumeClaim", "nfs", "csi", "iscsi", "cephfs", "azureFile"):
        if kind in source:
            source[kind]["readOnly"] = True
    return source


def make_asset_volumes(
    mounts: Iterable, source: Mapping, home: str
) -> tuple[list[dict], list[dict]]:
    """One read-only volume and mount per ``files`` asset.

    ``mounts`` are :class:`~jupyterhub_spaces.session.AssetMount` (``source`` is the
    asset's path relative to the assets volume, ``target`` its path under the home);
    ``source`` is the volume source holding the data root, e.g.
    ``{"persistentVolumeClaim": {"claimName": "spaces-assets"}}`` or ``{"nfs": {...}}``.
    """
    volumes, volume_mounts = [], []
    for m in mounts:
        sub_path = posixpath.normpath(m.source).lstrip("/")
        if sub_path.startswith("..") or sub_path == ".":
            raise ValueError(f"asset {m.asset!r} has a location outside the assets volume: {m.source!r}")
        name = f"asset-{m.asset_id}"
        volumes.append({"name": name, **_read_only_source(source)})
        volume_mounts.append(
            {
                "name": name,
                "mountPath": posixpath.join(home, m.target),
                "subPath": sub_path,
                "readOnly": True,
            }
        )
    return volumes, volume_mounts


def claim_names(volumes: Iterable[Mapping]) -> set[str]:
    """The PVC names a list of volumes refers to."""
    return {
        v["persistentVolumeClaim"]["claimName"]
        for v in volumes
        if isinstance(v, Mapping) and "persistentVolumeClaim" in v
    }


def make_network_policy(
    name: str,
    namespace: str,
    pod_labels: Mapping[str, str],
    ingress_from: Iterable[Mapping] = (),
    egress_to: Iterable[Mapping] = (),
    dns: bool = True,
    ingress_port: int | None = None,
) -> dict:
    """A NetworkPolicy that closes a session pod off: ingress only from
    ``ingress_from`` (e.g. the proxy's pods) and, when ``ingress_port`` is given, only
    to that port (the session's server); egress only to ``egress_to`` (e.g. the hub
    and the space's databases) plus DNS. A Sandbox pod gets one so data cannot leave
    it by the network."""
    egress = [{"to": [dict(peer)]} for peer in egress_to]
    if dns:
        egress.append(
            {
                "to": [{"namespaceSelector": {}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(pod_labels)},
        "spec": {
            "podSelector": {"matchLabels": dict(pod_labels)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [dict(peer) for peer in ingress_from],
                    **({"ports": [{"protocol": "TCP", "port": int(ingress_port)}]} if ingress_port else {}),
                }
            ]
            if ingress_from
            else [],
            "egress": egress,
        },
    }
