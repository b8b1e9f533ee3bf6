"""The hub pod of a `helm install` of jupyterhub-spaces on Zero to JupyterHub 4.2.0,
laid out in a directory: what the hub process would see in the pod.

The Zero to JupyterHub chart cannot be fetched here (no Helm repository access), so
only this chart's templates are rendered (Helm's own engine, helm-python-sdk); the
values Helm would hand to that chart (its 4.2.0 defaults under ours, as Helm merges a
dependency's values) are built here, and the hub's own files are the stand-ins in
``z2jh_hub/`` (written from reading that chart's source). Paths of the pod map to
directories of one temporary tree:

- ``/usr/local/etc/jupyterhub/`` (``etc``): the stand-in ``jupyterhub_config.py`` and
  ``z2jh.py`` (the chart's ConfigMap), ``config/`` (resource names), ``secret/``
  (``values.yaml`` and the generated secrets of the hub Secret), and every file the
  hub image's Dockerfile copies there (``jupyterhub_config.d/spaces.py``);
- ``/usr/local/etc/jupyterhub-spaces/`` (``spaces_etc``): the Secrets this chart
  renders, mounted as its ``hub.extraVolumeMounts`` say, and the image's
  ``spaces_config.py``;
- ``/usr/local/share/jupyterhub-spaces/`` (``share``): the image's templates.

The stand-ins read ``$Z2JH_ETC``, and our config files ``$SPACES_CONFIG_DIR`` and
``$SPACES_TEMPLATES_DIR``, for those directories (:meth:`HubPod.env`).
"""

from __future__ import annotations

import copy
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "jupyterhub-spaces"
DOCKERFILE = ROOT / "images" / "hub" / "Dockerfile"
STAND_INS = Path(__file__).resolve().parent / "z2jh_hub"
Z2JH_VERSION = "4.2.0"
POD_DIRS = {
    "/usr/local/etc/jupyterhub/": "etc",
    "/usr/local/etc/jupyterhub-spaces/": "spaces_etc",
    "/usr/local/share/jupyterhub-spaces/": "share",
}


def coalesce(defaults, overrides):
    """Helm's merge of a parent chart's values over a dependency's defaults: maps
    merge key by key, a null deletes the key, anything else replaces."""
    if not isinstance(defaults, dict) or not isinstance(overrides, dict):
        return copy.deepcopy(overrides)
    out = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = coalesce(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def render(values: dict, release: str, namespace: str) -> tuple[list[dict], dict]:
    """Every object this chart renders with ``values``, and its merged values."""
    import helm_python

    with helm_python.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=release, namespace=namespace)
        merged = chart.merge_values(values)
    objects = [doc for path, text in sorted(manifests.items()) if not path.endswith("NOTES.txt")
               for doc in yaml.safe_load_all(text) if doc]
    return objects, merged


def image_copies() -> list[tuple[str, str]]:
    """(source in the checkout, path in the image) of each file of this checkout the
    hub image's Dockerfile copies into the config directories."""
    copies = []
    for line in DOCKERFILE.read_text().splitlines():
        m = re.match(r"COPY\s+(hub_config/\S+)\s+(/\S+)$", line.strip())
        if m:
            copies.append((m.group(1), m.group(2)))
    return copies


def secret_data(obj: dict) -> dict[str, str]:
    import base64

    data = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    data.update(obj.get("stringData") or {})
    return data


@dataclass
class HubPod:
    """The hub pod's files under ``root``, from this chart rendered with ``values``."""

    root: Path
    values: dict
    release: str = "jhub"
    namespace: str = "default"
    objects: list[dict] = field(default_factory=list)
    merged: dict = field(default_factory=dict)
    subchart: dict = field(default_factory=dict)
    hub_secret: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.objects, self.merged = render(self.values, self.release, self.namespace)
        defaults = yaml.safe_load((STAND_INS / "values.yaml").read_text())
        self.subchart = coalesce(defaults, self.merged["jupyterhub"])
        # what Zero to JupyterHub's hub Secret adds to its values
        self.subchart["Chart"] = {"Name": "jupyterhub", "Version": Z2JH_VERSION,
                                  "AppVersion": "5.3.0"}
        self.subchart["Release"] = {"Name": self.release, "Namespace": self.namespace,
                                    "Service": "Helm"}

    def path(self, pod_path: str) -> Path:
        """Where ``pod_path`` of the hub container is in this layout."""
        for prefix, name in POD_DIRS.items():
            if pod_path.startswith(prefix):
                return getattr(self, name) / pod_path[len(prefix):]
        raise ValueError(f"{pod_path} is outside the directories the test lays out")

    @property
    def etc(self) -> Path:
        return self.root / "etc-jupyterhub"

    @property
    def spaces_etc(self) -> Path:
        return self.root / "etc-jupyterhub-spaces"

    @property
    def share(self) -> Path:
        return self.root / "share-jupyterhub-spaces"

    @property
    def workdir(self) -> Path:
        """The hub's working directory (/srv/jupyterhub in the pod)."""
        return self.root / "srv-jupyterhub"

    def secrets(self) -> dict[str, dict[str, str]]:
        return {o["metadata"]["name"]: secret_data(o) for o in self.objects
                if o["kind"] == "Secret"}

    def lay_out(self) -> HubPod:
        for d in (self.etc, self.spaces_etc, self.share, self.workdir):
            d.mkdir(parents=True, exist_ok=True)
        # the chart's ConfigMap: its config file, its helper, the resource names
        for name in ("jupyterhub_config.py", "z2jh.py"):
            shutil.copy(STAND_INS / name, self.etc / name)
        (self.etc / "config").mkdir(exist_ok=True)
        for name in ("hub", "proxy-api", "proxy-public", "user-scheduler", "priority",
                     "singleuser", "image-pull-secret"):
            (self.etc / "config" / name).write_text(name)
        # the hub Secret: the values and the secrets Helm generates
        self.hub_secret = {
            "values.yaml": yaml.safe_dump(self.subchart),
            "hub.config.JupyterHub.cookie_secret": secrets.token_hex(32),
            "hub.config.CryptKeeper.keys": secrets.token_hex(32),
            "hub.config.ConfigurableHTTPProxy.auth_token": secrets.token_hex(32),
        }
        for name in self.subchart["hub"].get("services") or {}:
            self.hub_secret[f"hub.services.{name}.apiToken"] = secrets.token_hex(32)
        (self.etc / "secret").mkdir(exist_ok=True)
        for key, value in self.hub_secret.items():
            (self.etc / "secret" / key).write_text(value)
        # the hub image's own files
        for source, target in image_copies():
            dest = self.path(target)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, dest, dirs_exist_ok=True)
            else:
                shutil.copy(ROOT / source, dest)
        # this chart's Secrets, where hub.extraVolumes / extraVolumeMounts put them
        hub = self.subchart["hub"]
        volumes = {v["name"]: v for v in hub.get("extraVolumes") or []}
        rendered = self.secrets()
        for mount in hub.get("extraVolumeMounts") or []:
            source = volumes[mount["name"]].get("secret") or {}
            data = rendered.get(source.get("secretName"))
            if data is None:
                assert source.get("optional"), f"{source} is not rendered and not optional"
                continue
            folder = self.path(mount["mountPath"].rstrip("/") + "/")
            folder.mkdir(parents=True, exist_ok=True)
            for key, value in data.items():
                (folder / key).write_text(value)
        return self

    def container_env(self) -> dict[str, str]:
        """The hub container's environment as Zero to JupyterHub's Deployment sets it
        (with this chart's ``hub.extraEnv``), Service variables aside."""
        env = {
            "PYTHONUNBUFFERED": "1",
            "HELM_RELEASE_NAME": self.release,
            "POD_NAMESPACE": self.namespace,
            "CONFIGPROXY_AUTH_TOKEN": self.hub_secret["hub.config.ConfigurableHTTPProxy.auth_token"],
        }
        extra = self.subchart["hub"].get("extraEnv") or {}
        items = ([{"name": k, **(v if isinstance(v, dict) else {"value": v})}
                  for k, v in extra.items()] if isinstance(extra, dict) else extra)
        rendered = self.secrets()
        for item in items:
            if "value" in item:
                env[item["name"]] = str(item["value"])
                continue
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = rendered[ref["name"]][ref["key"]]
        return env

    def env(self) -> dict[str, str]:
        """Where the stand-ins and our config files find this layout."""
        return {"Z2JH_ETC": str(self.etc), "SPACES_CONFIG_DIR": str(self.spaces_etc),
                "SPACES_TEMPLATES_DIR": str(self.share / "templates")}
