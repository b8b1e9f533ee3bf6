"""Settings shared by the hub side (spawner) and the spaces service.

Both processes read the same ``c.SpacesSettings`` section: the hub from its
``jupyterhub_config.py``, the service from the config file it is started with, so a
site sets each value once (``hub_config/spaces_config.py``).
"""

from __future__ import annotations

from traitlets import Bool, Dict, Integer, Unicode, default, validate
from traitlets.config import Configurable

DEFAULT_PROFILES = {
    "small": {
        "display_name": "Small: 1 CPU, 2 GB",
        "cpu_guarantee": 0.5,
        "cpu_limit": 1,
        "mem_guarantee": "1G",
        "mem_limit": "2G",
        "node_selector": {},
        "tolerations": [],
        "min_workers": 0,
        "max_workers": 2,
    },
    "medium": {
        "display_name": "Medium: 2 CPU, 4 GB",
        "cpu_guarantee": 1,
        "cpu_limit": 2,
        "mem_guarantee": "2G",
        "mem_limit": "4G",
        "node_selector": {},
        "tolerations": [],
        "min_workers": 0,
        "max_workers": 4,
    },
    "large": {
        "display_name": "Large: 4 CPU, 16 GB",
        "cpu_guarantee": 2,
        "cpu_limit": 4,
        "mem_guarantee": "8G",
        "mem_limit": "16G",
        "node_selector": {},
        "tolerations": [],
        "min_workers": 0,
        "max_workers": 8,
    },
}

PROFILE_KEYS = {
    "display_name",
    "cpu_guarantee",
    "cpu_limit",
    "mem_guarantee",
    "mem_limit",
    "node_selector",
    "tolerations",
    "min_workers",
    "max_workers",
}


class SpacesSettings(Configurable):
    """Site settings of jupyterhub-spaces, read by the spawner and the service."""

    db_url = Unicode(
        "sqlite:///jupyterhub_spaces.sqlite",
        help="SQLAlchemy URL of the spaces catalog database (SQLite or PostgreSQL).",
    ).tag(config=True)

    service_name = Unicode(
        "spaces", help="Name of the JupyterHub service that serves the Spaces API and app."
    ).tag(config=True)

    admin_scope = Unicode(
        "custom:spaces:admin",
        help="JupyterHub custom scope that makes a user or token a spaces admin "
        "(grant subscriptions, read the audit log).",
    ).tag(config=True)

    space_limit = Integer(
        15, help="How many space specs one user may own.", min=1
    ).tag(config=True)

    lineage_enforced = Bool(
        True,
        help="Whether access to a derived asset needs subscriptions to every contributing "
        "product and asset. When False, assets derived only from assets need none.",
    ).tag(config=True)

    machine_profiles = Dict(
        help="Machine profiles a space may pick, by name. Each has display_name, "
        "cpu_guarantee, cpu_limit, mem_guarantee, mem_limit, node_selector, tolerations, "
        "min_workers and max_workers.",
    ).tag(config=True)

    default_profile = Unicode(
        help="The profile a new space gets when it names none (default: the first one)."
    ).tag(config=True)

    source_db_url = Unicode(
        "sqlite:///jupyterhub_spaces_sources.sqlite",
        help="SQLAlchemy URL of the database holding the source tables of 'table' assets "
        "(an asset's location is its table name there). Sessions never get this URL.",
    ).tag(config=True)

    data_root = Unicode(
        "",
        help="Directory holding the files of 'files' assets on this machine "
        "(local sessions mount <data_root>/<asset location> read-only).",
    ).tag(config=True)

    @default("machine_profiles")
    def _default_profiles(self):
        return {name: dict(p) for name, p in DEFAULT_PROFILES.items()}

    @validate("machine_profiles")
    def _check_profiles(self, proposal):
        profiles = proposal["value"]
        if not profiles:
            raise ValueError("machine_profiles needs at least one profile")
        for name, profile in profiles.items():
            unknown = set(profile) - PROFILE_KEYS
            if unknown:
                raise ValueError(
                    f"machine profile {name!r} has unknown key(s) {sorted(unknown)}; "
                    f"known keys: {sorted(PROFILE_KEYS)}"
                )
            lo, hi = profile.get("min_workers", 0), profile.get("max_workers", 0)
            if not 0 <= lo <= hi:
                raise ValueError(f"machine profile {name!r}: need 0 <= min_workers <= max_workers")
        return profiles

    @default("default_profile")
    def _default_default_profile(self):
        return next(iter(self.machine_profiles))
