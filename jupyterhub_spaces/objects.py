"""Pure builders of the Kubernetes pieces of a space session.

Plain dicts in, plain dicts out (the shapes of the Kubernetes API), no client calls:
:class:`~jupyterhub_spaces.spawner.KubeSpaceSpawner` gathers settings and calls these,
and tests validate what they return against the Kubernetes schemas offline.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping

LABEL_PREFIX = "spaces.jupyter.org"


def label_value(value: str) -> str:
    """``value`` as a valid label value (63 characters of [A-Za-z0-9._-], alphanumeric ends)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", value)[:63].strip("._-")
    return cleaned


def make_session_labels(space_slug: str, space_id: int, mode: str) -> dict[str, str]:
    """Labels that mark a pod as a space session (used by NetworkPolicies and ops)."""
    return {
        f"{LABEL_PREFIX}/space": label_value(space_slug),
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
) -> dict:
    """A NetworkPolicy that closes a session pod off: ingress only from
    ``ingress_from`` (e.g. the proxy's pods), egress only to ``egress_to`` (e.g. the
    hub and the space's databases) plus DNS. A Sandbox pod gets one so data cannot
    leave it by the network."""
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
            "ingress": [{"from": [dict(peer) for peer in ingress_from]}] if ingress_from else [],
            "egress": egress,
        },
    }
