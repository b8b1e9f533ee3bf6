"""Settings of Code Assets and Tasks (section ``c.SpacesTasks`` of
``spaces_config.py``, read by the spaces service)."""

from __future__ import annotations

import sys

from traitlets import Bool, Integer, List, Tuple, Unicode
from traitlets.config import Configurable


class SpacesTasks(Configurable):
    """Code Assets, Tasks and the Apache Airflow engine that runs them."""

    engine_url = Unicode(
        "",
        help="URL of the Airflow API server the service calls to run, pause and cancel "
        "Tasks, with its base path (e.g. http://127.0.0.1:10180/services/airflow). Empty: "
        "Tasks are saved but not run.",
    ).tag(config=True)

    engine_user = Unicode(
        "spaces", help="The Airflow user (simple auth manager) the service calls Airflow as."
    ).tag(config=True)

    engine_password_file = Unicode(
        "",
        help="File holding the Airflow passwords (JSON {user: password}, Airflow's simple "
        "auth manager format); the service reads engine_user's password there.",
    ).tag(config=True)

    engine_services = List(
        Unicode(),
        default_value=["airflow-api-server", "airflow-scheduler", "airflow-dag-processor"],
        help="JupyterHub services whose tokens may call the engine endpoints "
        "(/api/v1/engine/...): the Airflow components the hub runs.",
    ).tag(config=True)

    space_home_template = Unicode(
        "",
        help="Embedded default: a member's home in a space, where 'Save as code asset' "
        "reads files and restore writes them; {username} and {space} (the space's server name, "
        "space-<id>, as in LocalSpaceSpawner.home_dir_template) are filled in. Empty: Code Assets are saved from uploaded files only.",
    ).tag(config=True)

    run_root = Unicode(
        "",
        help="Directory under which each run of a Task gets its own working directory "
        "holding its Code Asset version's files (private to the hub's account).",
    ).tag(config=True)

    run_python = Unicode(
        "",
        help="The Python that runs a Task's script, and papermill for its notebook "
        "(default: the service's own, which is the sessions' Python, so a Task runs with "
        "the same packages as the space's sessions).",
    ).tag(config=True)

    @property
    def python(self) -> str:
        """:attr:`run_python`, or the service's own Python."""
        return self.run_python or sys.executable

    isolate = Bool(
        True,
        help="Run each Task's code the way a local session runs: as its owner's own "
        "unprivileged account in a bubblewrap sandbox (the service must run as root with "
        "bubblewrap installed). False runs it as the service's account: development only.",
    ).tag(config=True)

    account_name_template = Unicode(
        "spaces-{username}",
        help="The Unix account a Task's code runs as (the same as the owner's sessions: "
        "keep it equal to LocalSpaceSpawner.account_name_template).",
    ).tag(config=True)

    account_uid_range = Tuple(
        default_value=(),
        help="(low, high): the uids of accounts created for Task owners (as "
        "LocalSpaceSpawner.account_uid_range). Unset: system accounts.",
    ).tag(config=True)

    create_accounts = Bool(
        True, help="Create a Task owner's missing account on first use (useradd)."
    ).tag(config=True)

    max_code_asset_bytes = Integer(
        20 * 1024 * 1024, help="Largest total size of one Code Asset version, in bytes.", min=1
    ).tag(config=True)

    max_code_asset_files = Integer(
        500, help="Most files one Code Asset version may hold.", min=1
    ).tag(config=True)

    max_log_bytes = Integer(
        256 * 1024, help="How much of a run's output is kept with the run (its end).", min=1024
    ).tag(config=True)
