"""Settings of jupyterhub-spaces for the embedded default.

Read by both the hub (``load_subconfig`` in ``jupyterhub_config.py``) and the spaces
service (``jupyterhub-spaces-service --config=<this file>``), so each value is set once.
Every file lives under ``var/`` of the checkout, or under ``$SPACES_VAR_DIR``.
Reference of every setting: docs/configuration.md.
"""

import os
from pathlib import Path

c = get_config()  # noqa: F821

VAR = Path(os.environ.get("SPACES_VAR_DIR") or Path(__file__).resolve().parent.parent / "var")

# the catalog, and the source tables of 'table' assets: SQLite files
c.SpacesSettings.db_url = f"sqlite:///{VAR / 'spaces.sqlite'}"
c.SpacesSettings.source_db_url = f"sqlite:///{VAR / 'sources.sqlite'}"
# the files of 'files' assets
c.SpacesSettings.data_root = str(VAR / "data")

c.SpacesSettings.space_limit = 15
c.SpacesSettings.lineage_enforced = True

# local sessions are processes on this machine: the limits are recorded and exported
# to the session (CPU_LIMIT, MEM_LIMIT), not enforced
c.SpacesSettings.machine_profiles = {
    "small": {
        "display_name": "Small: 1 CPU, 2 GB",
        "cpu_guarantee": 0.5,
        "cpu_limit": 1,
        "mem_guarantee": "1G",
        "mem_limit": "2G",
        "min_workers": 0,
        "max_workers": 2,
    },
    "medium": {
        "display_name": "Medium: 2 CPU, 4 GB",
        "cpu_guarantee": 1,
        "cpu_limit": 2,
        "mem_guarantee": "2G",
        "mem_limit": "4G",
        "min_workers": 0,
        "max_workers": 4,
    },
}
c.SpacesSettings.default_profile = "small"

# Tasks: code saved from a member's space home, runs in private directories, and the
# Airflow the hub runs (hub_config/jupyterhub_config.py starts it when installed)
c.SpacesTasks.space_home_template = str(VAR / "spaces-home" / "{username}" / "{space}")
c.SpacesTasks.run_root = str(VAR / "task-runs")
c.SpacesTasks.engine_url = os.environ.get("SPACES_AIRFLOW_URL", "")
c.SpacesTasks.engine_password_file = str(VAR / "airflow" / "passwords.json")
