"""The tools session part: tells the session which tools the space selected, in which
mode its user works, and where Superset's virtualenv is.

The spawner runs it with the other session parts (see :mod:`jupyterhub_spaces.session`).
Everything comes from the session context, which the spawner built from the store and
the policy decision: a user cannot pick their mode or add a tool.
"""

from __future__ import annotations

import os

from traitlets import Integer, Unicode
from traitlets.config import Configurable

from .catalog import cache_dir, superset_venv

#: Folder holding ``jupyter_server_config.d/`` that enables the tools extension; on
#: the session's ``JUPYTER_CONFIG_PATH`` so local sessions load it from this package.
JUPYTER_CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jupyter-config")


class ToolsSettings(Configurable):
    """Hub-side settings of the tools (``c.ToolsSettings`` in spaces_config.py)."""

    superset_venv = Unicode(
        "",
        help="Superset's virtualenv as seen by the session. Empty: the session's "
        "default, ${XDG_CACHE_HOME:-$HOME/.cache}/jupyterhub-spaces/superset-venv "
        "(what scripts/setup.d/50-superset.sh builds). Images set it to where their "
        "Dockerfile installed Superset.",
    ).tag(config=True)

    superset_workers = Integer(
        1,
        help="Gunicorn workers of each session's Superset. One worker with threads "
        "serves one user well and keeps memory near 300 MB; see docs/tools.md.",
    ).tag(config=True)


class ToolsPart:
    """Session part ``tools``."""

    name = "tools"

    async def start(self, ctx) -> dict[str, str]:
        settings = ToolsSettings(config=getattr(ctx.settings, "config", None))
        env = {
            "SPACES_TOOLS": ",".join(ctx.tools),
            "SPACES_MODE": "sandbox" if ctx.sandbox else "workbench",
            "SPACES_SUPERSET_WORKERS": str(settings.superset_workers),
        }
        if settings.superset_venv:
            env["SPACES_SUPERSET_VENV"] = settings.superset_venv
        if ctx.backend == "local":
            env["JUPYTER_CONFIG_PATH"] = JUPYTER_CONFIG_DIR
            # A local session has its own HOME (the space's working folder) and does
            # not inherit XDG_CACHE_HOME: point it at the hub machine's cache, where
            # the setup script built Superset and its template metadata database.
            env.setdefault("SPACES_SUPERSET_VENV", superset_venv(os.environ))
            env["SPACES_SUPERSET_TEMPLATE_DB"] = os.path.join(
                cache_dir(os.environ), "superset-metadata-template.db"
            )
        return env

    async def stop(self, ctx) -> None:
        # Superset and RStudio run under the session's Jupyter server and stop with it;
        # their state lives in the session's home and is kept for the next activation.
        return None


part = ToolsPart()
