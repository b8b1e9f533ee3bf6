"""Settings of jupyterhub-spaces on Kubernetes, read by the hub and the spaces service.

The hub image installs this file as ``/usr/local/etc/jupyterhub-spaces/spaces_config.py``.
The hub's config (``jupyterhub_config_k8s.py``) loads it with ``load_subconfig`` and
starts the spaces service with ``--config=<this file>``, so both read one catalog and
one set of space databases, as in the embedded default.

It maps the values and Secrets the chart mounts under the same directory
(``values/``, ``database/``) onto traits and nothing more. The directory can be moved
with ``$SPACES_CONFIG_DIR`` (tests do). Reference of every setting:
docs/configuration.md.
"""

import os
from pathlib import Path

import yaml

# `c` is given by whoever loads this file (traitlets, for the hub and the service);
# no get_config() call: this file must also load where that name means something else
ROOT = Path(os.environ.get("SPACES_CONFIG_DIR", "/usr/local/etc/jupyterhub-spaces"))
values = yaml.safe_load((ROOT / "values" / "values.yaml").read_text())
spaces = values["spaces"]


def database_secret(key):
    """One key of the mounted database Secret; refuses to start without it, so the
    catalog never falls back to a SQLite file inside the hub pod."""
    path = ROOT / "database" / key
    if not path.is_file() or not path.read_text().strip():
        raise RuntimeError(
            f"{path} is missing or empty: the Secret jupyterhub-spaces-database must hold "
            f"'{key}' (set database.* in the chart's values, or create that Secret)"
        )
    return path.read_text().strip()


# -- the catalog and its rules
c.SpacesSettings.db_url = database_secret("catalog-url")
c.SpacesSettings.source_db_url = database_secret("source-url")
c.SpacesSettings.space_limit = spaces["spaceLimit"]
c.SpacesSettings.lineage_enforced = spaces["lineageEnforced"]
c.SpacesSettings.machine_profiles = spaces["profiles"]
c.SpacesSettings.default_profile = spaces["defaultProfile"]

# -- the space databases: on Kubernetes always PostgreSQL (sessions run in other
# pods and could never reach a file of the hub's)
c.SpaceDatabases.backend = "postgresql"
c.SpaceDatabases.admin_url = database_secret("admin-url")
c.SpaceDatabases.session_host = values["database"]["sessionHost"]
c.SpaceDatabases.session_port = values["database"]["sessionPort"]
c.SpaceDatabases.role_prefix = values["database"]["rolePrefix"]
