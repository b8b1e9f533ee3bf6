"""Stand-in for Zero to JupyterHub's ``z2jh.py`` (its hub helper module), written
for these tests from reading that chart's 4.2.0 source; not a copy of it.

The contract it keeps, which the chart's config files must live with:

- ``get_config(key, default=None)``: a dotted key (``"hub.config"``) looked up in the
  chart's values, read once from ``secret/values.yaml`` (merged with
  ``existing-secret/values.yaml`` when present) under the config directory; a key
  that is missing, or under a scalar, gives ``default``;
- ``set_config_if_not_none(section, trait, key)``: sets the trait when the key has a
  value;
- ``get_secret_value(key, default)``: one key of the hub Secret (the user's
  ``existing-secret`` first);
- ``get_name(name)`` / ``get_name_env(name, suffix)``: resource names from the hub
  ConfigMap (``config/<name>``) and the environment variables Kubernetes derives
  from them (``PROXY_API_SERVICE_PORT``).

The real module reads ``/usr/local/etc/jupyterhub``; this one reads ``$Z2JH_ETC``
when set, so a test can lay the hub pod's mounts out in a temporary directory.
"""

import os
from functools import lru_cache

import yaml

ETC = os.environ.get("Z2JH_ETC", "/usr/local/etc/jupyterhub")


def _merge(base, override):
    out = dict(base)
    for key, value in override.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@lru_cache
def _values():
    merged = {}
    for name in ("secret", "existing-secret"):
        path = os.path.join(ETC, name, "values.yaml")
        if os.path.exists(path):
            print(f"Loading {path}")
            with open(path) as f:
                merged = _merge(merged, yaml.safe_load(f) or {})
        else:
            print(f"No config at {path}")
    return merged


def get_config(key, default=None):
    """The value at dotted ``key`` of the chart's values, else ``default``."""
    node = _values()
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def set_config_if_not_none(section, trait, key):
    value = get_config(key)
    if value is not None:
        setattr(section, trait, value)


_NO_DEFAULT = object()


def get_secret_value(key, default=_NO_DEFAULT):
    for name in ("existing-secret", "secret"):
        path = os.path.join(ETC, name, key)
        if os.path.exists(path):
            with open(path) as f:
                return f.read()
    if default is not _NO_DEFAULT:
        return default
    raise KeyError(f"{key} is in neither hub Secret")


def get_name(name):
    path = os.path.join(ETC, "config", name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found")
    with open(path) as f:
        return f.read()


def get_name_env(name, suffix=""):
    return os.environ[(get_name(name) + suffix).upper().replace("-", "_")]
