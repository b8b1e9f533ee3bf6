"""The tools of a space session: Superset, SQL Lab and RStudio behind
jupyter-server-proxy.

How the pieces fit:

- :mod:`.catalog` (pure) knows which tools exist, which the space selected and whether
  their programs are installed; a missing program makes a tool ``unavailable`` with a
  reason instead of a proxy that fails with a 500.
- :mod:`.serverproxy` holds the ``jupyter_serverproxy_servers`` entry points that
  jupyter-server-proxy loads inside the session's Jupyter server.
- :mod:`.superset` builds Superset's command and its ``superset_config.py``;
  ``superset_boot.py`` runs inside Superset's own virtualenv to prepare its metadata
  database, roles, user and the space's databases.
- :mod:`.status` is the Jupyter server extension serving ``spaces-tools/status``.
- :mod:`.part` is the session part the spawner runs: it tells the session which tools
  the space selected and in which mode (workbench or sandbox) the user works.
"""

from .catalog import TOOL_NAMES, ToolState, tool_states

__all__ = ["TOOL_NAMES", "ToolState", "tool_states"]


def _jupyter_server_extension_points():
    return [{"module": "jupyterhub_spaces.tools.status"}]
