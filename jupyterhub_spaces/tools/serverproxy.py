"""jupyter-server-proxy entries for the space's tools (``jupyter_serverproxy_servers``).

Each function returns the configuration of one proxied server, or raises
:class:`ToolUnavailable` when the space did not select the tool or its program is not
installed: jupyter-server-proxy then registers no route and no launcher entry for it,
and the tools extension (:mod:`.status`) answers at its URL with the reason instead.

Superset is reached only through a unix socket in a private folder and believes the
user header only together with a per-process random token, both set here; what a
browser sends in those headers is replaced by the proxy.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import shlex
import sys
import tempfile
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from .catalog import TITLES, ToolState, tool_states

ICON_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "icons")

#: Header names Superset's middleware reads (as ``HTTP_X_SPACES_...``).
USER_HEADER = "X-Spaces-User"
TOKEN_HEADER = "X-Spaces-Proxy-Token"


class ToolUnavailable(RuntimeError):
    """The tool is not offered in this session; the message says why."""


@lru_cache(maxsize=1)
def runtime_dir() -> str:
    """A private (0700) folder for this Jupyter server's tool sockets
    (``SPACES_TOOLS_RUNTIME_DIR`` names one instead, e.g. for tests)."""
    given = os.environ.get("SPACES_TOOLS_RUNTIME_DIR")
    if given:
        os.makedirs(given, mode=0o700, exist_ok=True)
        return given
    path = tempfile.mkdtemp(prefix="spaces-tools-")
    atexit.register(shutil.rmtree, path, True)
    return path


@lru_cache(maxsize=1)
def proxy_token() -> str:
    """The secret the proxy adds to every request it sends to Superset."""
    return secrets.token_urlsafe(32)


def superset_socket() -> str:
    return os.path.join(runtime_dir(), "superset.sock")


def _state(name: str) -> ToolState:
    for state in tool_states(os.environ):
        if state.name == name:
            return state
    raise KeyError(name)


def _require(name: str, also_for: tuple[str, ...] = ()) -> ToolState:
    state = _state(name)
    others = [_state(n) for n in also_for]
    if not (state.selected or any(o.selected for o in others)):
        raise ToolUnavailable(f"{TITLES[name]} is not selected by this space")
    if not state.available:
        raise ToolUnavailable(state.reason)
    return state


def _escape(value: str) -> str:
    # jupyter-server-proxy formats these strings with str.format
    return value.replace("{", "{{").replace("}", "}}")


def superset_command() -> list[str]:
    """The launcher jupyter-server-proxy (and the tools extension) run."""
    return [
        sys.executable,
        "-m",
        "jupyterhub_spaces.tools.superset_run",
        "--base-url",
        "{base_url}",
        "--socket",
        _escape(superset_socket()),
    ]


def superset_environment() -> dict[str, str]:
    return {"SPACES_SUPERSET_PROXY_TOKEN": proxy_token()}


def superset_headers() -> dict[str, str]:
    user = os.environ.get("JUPYTERHUB_USER") or os.environ.get("USER") or "jovyan"
    return {USER_HEADER: _escape(user), TOKEN_HEADER: proxy_token()}


def setup_superset() -> dict:
    """Superset, served under ``<server url>superset/``.

    Registered also when only SQL Lab is selected (SQL Lab is part of Superset); its
    launcher entry shows only when Superset itself is selected.
    """
    _require("superset", also_for=("sqllab",))
    return {
        "command": superset_command(),
        "environment": superset_environment(),
        "unix_socket": superset_socket(),
        "absolute_url": True,
        # a first start may migrate Superset's metadata database
        "timeout": float(os.environ.get("SPACES_SUPERSET_START_TIMEOUT") or 300),
        "request_headers_override": superset_headers(),
        "new_browser_tab": True,
        "launcher_entry": {
            "enabled": _state("superset").selected,
            "title": TITLES["superset"],
            "icon_path": os.path.join(ICON_DIR, "superset.svg"),
            "category": "Spaces",
        },
    }


def setup_sqllab() -> dict:
    """SQL Lab: a launcher entry only. Its ``sqllab/`` route belongs to the tools
    extension, which redirects into Superset's SQL Lab with the space's Asset database
    selected (the database id is known once Superset has registered it)."""
    _require("sqllab")
    return {
        "command": [],
        "launcher_entry": {
            "enabled": True,
            "title": TITLES["sqllab"],
            "icon_path": os.path.join(ICON_DIR, "sqllab.svg"),
            "category": "Spaces",
        },
        "new_browser_tab": True,
    }


def rstudio_command(rserver: str, env: dict[str, str] | None = None) -> list[str]:
    """The command jupyter-rsession-proxy runs for RStudio Server (open-source
    edition), with the port and URL prefix filled in by jupyter-server-proxy.

    rserver runs as the session's user without its own authentication: the Jupyter
    server in front of it already checked who is calling.
    """
    env = os.environ if env is None else env
    user = env.get("JUPYTERHUB_USER") or env.get("USER") or "jovyan"
    data_dir = env.get("SPACES_RSTUDIO_DATA_DIR") or os.path.join(runtime_dir(), "rstudio")
    return [
        rserver,
        "--auth-none=1",
        "--www-frame-origin=same",
        "--www-port={port}",
        "--www-verify-user-agent=0",
        "--www-root-path={base_url}rstudio/",
        f"--server-data-dir={_escape(data_dir)}",
        f"--server-user={_escape(user)}",
        "--database-config-file=" + _escape(os.path.join(data_dir, "database.conf")),
        # its default key file lives in /var/lib, which the session's user cannot write
        "--secure-cookie-key-file=" + _escape(os.path.join(data_dir, "secure-cookie-key")),
    ]


def keep_redirects_in_session(response) -> None:
    """``rewrite_response`` for RStudio: rserver sometimes redirects to its own
    address (``http://127.0.0.1:<port>/...``); keep the browser on the session's URL
    by making such a redirect relative to the host it came from."""
    location = response.headers.get("Location", "")
    parts = urlsplit(location)
    if parts.scheme and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        response.headers["Location"] = urlunsplit(
            ("", "", parts.path or "/", parts.query, parts.fragment)
        )


def rstudio_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """R sees the space's library and databases: a per-space R library in the session's
    home, and the database URLs the session already has."""
    env = os.environ if env is None else env
    home = env.get("HOME", os.path.expanduser("~"))
    out = {
        "R_LIBS_USER": env.get("R_LIBS_USER") or os.path.join(home, ".spaces", "R", "library"),
        "RSTUDIO_DATA_HOME": os.path.join(home, ".spaces", "rstudio"),
    }
    for key in ("SPACES_ASSET_DB_URL", "SPACES_COLLABORATIVE_DB_URL", "SPACES_PUBLISH_DB_URL"):
        if env.get(key):
            out[key] = _escape(env[key])
    return out


def setup_rstudio() -> dict:
    """RStudio Server, when ``rserver`` is installed in the session's image."""
    state = _require("rstudio")
    data_dir = os.environ.get("SPACES_RSTUDIO_DATA_DIR") or os.path.join(runtime_dir(), "rstudio")
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    with open(os.path.join(data_dir, "database.conf"), "w") as f:
        # rserver keeps its own session state in SQLite under the data dir
        f.write("provider=sqlite\ndirectory=" + data_dir + "\n")
    key = os.path.join(data_dir, "secure-cookie-key")
    if not os.path.exists(key):
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return {
        "command": rstudio_command(state.program),
        "environment": rstudio_environment(),
        "rewrite_response": keep_redirects_in_session,
        "timeout": 30,
        "new_browser_tab": True,
        "launcher_entry": {
            "enabled": True,
            "title": TITLES["rstudio"],
            "icon_path": os.path.join(ICON_DIR, "rstudio.svg"),
            "category": "Spaces",
        },
    }


def shell_line(cmd: list[str]) -> str:
    """A command as one shell-quoted line (for logs and docs)."""
    return " ".join(shlex.quote(c) for c in cmd)
