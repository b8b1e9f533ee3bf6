"""Jupyter server extension of the session: tool status, SQL Lab deep link, and an
explanation (never a 500) at the URL of a tool that is not offered.

Routes, under the server's base URL:

- ``GET spaces-tools/status`` → ``{"tools": [{"name", "status", "reason", "url"}]}``
  with status ``waiting`` (starting), ``ready`` (answers) or ``unavailable`` (with the
  reason). Authenticated like every Jupyter server API.
- ``GET sqllab/`` → redirect into Superset's SQL Lab with the space's Asset database
  selected.
- ``GET <tool>/...`` for a tool that is not offered → 404 (not selected by the space)
  or 503 (program not installed), saying why.

At load it also starts Superset in the background when the space selected it, so the
tool is ready by the time the user opens it (``SpacesTools.start_superset``).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import signal
import subprocess

from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.escape import xhtml_escape
from traitlets import Bool, Float
from traitlets.config import Configurable

from . import serverproxy
from .catalog import TITLES, tool_states
from .superset import make_setup

STATUS_PATH = "spaces-tools/status"


class SpacesTools(Configurable):
    """Settings of the tools extension inside a session's Jupyter server."""

    start_superset = Bool(
        True,
        help="Start Superset when the session starts (if the space selected Superset or "
        "SQL Lab), instead of on its first visit. Costs its memory from the start; makes "
        "it ready when the user opens it.",
    ).tag(config=True)

    sqllab_wait = Float(
        120.0,
        help="Seconds the SQL Lab link waits, on a session's first start, for Superset to "
        "register the space's Asset database before opening SQL Lab without it.",
    ).tag(config=True)

    probe_timeout = Float(
        2.0, help="Seconds to wait for a tool to answer when reporting its status."
    ).tag(config=True)


def _proxy_state(web_app, name: str) -> dict | None:
    """jupyter-server-proxy's process state for tool ``name`` (port, process), if any."""
    stack = [web_app.default_router, web_app.wildcard_router]
    while stack:
        router = stack.pop()
        for rule in getattr(router, "rules", []):
            target = rule.target
            if hasattr(target, "rules"):
                stack.append(target)
            elif isinstance(target, type) and getattr(target, "name", None) == name:
                state = (rule.target_kwargs or {}).get("state")
                if state is not None:
                    return state
    return None


async def _answers_http(
    path: str, *, unix_socket: str = "", port: int = 0, timeout: float = 2.0, need_ok: bool = False
) -> bool:
    """True when something answers HTTP there (any status: it is up), or, with
    ``need_ok``, answers 200 (Superset's start placeholder answers 503)."""
    try:
        if unix_socket:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(unix_socket), timeout
            )
        else:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), timeout
            )
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        if need_ok:
            return line.split(b" ")[1:2] == [b"200"]
        return line.startswith(b"HTTP/")
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        writer.close()


def _die_with_parent() -> None:
    """In the child before exec: end with the Jupyter server even if it is killed
    without a chance to stop its tools (Linux; elsewhere the atexit hook remains)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_DEATHSIG
    except OSError:
        pass


class ToolsStatusHandler(APIHandler):
    """``GET spaces-tools/status``."""

    def initialize(self, tools):
        self.tools = tools

    @web.authenticated
    async def get(self):
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"tools": await self.tools.report(self.base_url)}))


class SqlLabHandler(JupyterHandler):
    """``GET sqllab/``: into Superset's SQL Lab with the Asset database selected."""

    def initialize(self, tools):
        self.tools = tools

    @web.authenticated
    async def get(self, _rest=""):
        # On a session's very first start the Asset database gets its id only once
        # Superset has registered it: wait for that rather than open SQL Lab on no
        # database.
        for _ in range(int(self.tools.config.sqllab_wait * 2)):
            if self.tools.asset_database_id() is not None or not self.tools.superset_starting():
                break
            await asyncio.sleep(0.5)
        self.redirect(url_path_join(self.base_url, self.tools.sqllab_path()))


class NotOfferedHandler(JupyterHandler):
    """The URL of a tool this session does not offer: say why, as JSON for API
    clients and as a short page for people."""

    def initialize(self, tool, status_code, reason):
        self.tool, self.status_code, self.reason = tool, status_code, reason

    @web.authenticated
    def get(self, _rest=""):
        self.set_status(self.status_code)
        body = {
            "status": self.status_code,
            "error": "tool_unavailable" if self.status_code == 503 else "tool_not_selected",
            "message": self.reason,
        }
        if "text/html" in self.request.headers.get("Accept", ""):
            self.set_header("Content-Type", "text/html; charset=utf-8")
            title = TITLES.get(self.tool, self.tool)
            self.finish(
                f"<!doctype html><title>{title} unavailable</title>"
                f"<h1>{title} is not available in this space</h1>"
                f"<p>{xhtml_escape(self.reason)}</p>"
            )
        else:
            self.finish(json.dumps(body))

    post = put = delete = patch = get


class Tools:
    """The tools of this session and how to tell their status."""

    def __init__(self, serverapp, config: SpacesTools):
        self.serverapp = serverapp
        self.config = config
        self.states = {s.name: s for s in tool_states(os.environ)}
        self.superset = make_setup(os.environ, serverapp.base_url)
        self.process: subprocess.Popen | None = None

    @property
    def offered_superset(self) -> bool:
        s = self.states["superset"]
        return s.available and (s.selected or self.states["sqllab"].selected)

    def listed(self) -> list[str]:
        """Tools to report: what the space selected (all when not in a space)."""
        raw = os.environ.get("SPACES_TOOLS")
        if raw is None:
            return ["jupyterlab", *self.states]
        names = [t.strip() for t in raw.split(",") if t.strip()]
        return [n for n in names if n == "jupyterlab" or n in self.states] + [
            n for n in names if n not in self.states and n != "jupyterlab"
        ]

    def asset_database_id(self) -> int | None:
        try:
            with open(self.superset.state_file) as f:
                return json.load(f)["databases"].get("asset")
        except (OSError, ValueError, KeyError, AttributeError):
            return None

    def superset_starting(self) -> bool:
        """The Superset this extension started is still running (so may yet register
        the databases)."""
        return self.process is not None and self.process.poll() is None

    def sqllab_path(self) -> str:
        dbid = self.asset_database_id()
        return "superset/sqllab/" + (f"?dbid={dbid}" if dbid else "")

    async def _status(self, name: str, base_url: str) -> dict:
        entry = {"name": name, "status": "unavailable", "reason": "", "url": ""}
        if name == "jupyterlab":
            # this server answering is the proof
            return {**entry, "status": "ready", "url": url_path_join(base_url, "lab")}
        state = self.states.get(name)
        if state is None:
            return {
                **entry,
                "reason": f"unknown tool {name!r}: this session offers " + ", ".join(self.states),
            }
        if not state.available:
            return {**entry, "reason": state.reason}
        if name in ("superset", "sqllab"):
            up = await _answers_http(
                self.superset.app_root + "/health",
                unix_socket=serverproxy.superset_socket(),
                timeout=self.config.probe_timeout,
                need_ok=True,
            )
            url = url_path_join(base_url, self.sqllab_path() if name == "sqllab" else "superset/")
            if up:
                return {**entry, "status": "ready", "url": url}
            if self.process is not None and self.process.poll() is not None:
                return {
                    **entry,
                    "reason": f"Superset exited with code {self.process.returncode}; "
                    "see the session's log, then open it again to retry",
                    "url": url,
                }
            return {**entry, "status": "waiting", "reason": "Superset is starting", "url": url}
        if name == "rstudio":
            url = url_path_join(base_url, "rstudio/")
            proxy = _proxy_state(self.serverapp.web_app, "rstudio") or {}
            if "proc" not in proxy:
                return {**entry, "status": "ready", "reason": "starts when opened", "url": url}
            up = await _answers_http(
                "/", port=proxy.get("port", 0), timeout=self.config.probe_timeout
            )
            return {**entry, "status": "ready" if up else "waiting", "url": url}
        return entry

    async def report(self, base_url: str) -> list[dict]:
        # probed at once: a report takes one probe timeout at most, well within what
        # the spaces service waits, even while a starting Superset holds every probe
        return list(await asyncio.gather(*(self._status(n, base_url) for n in self.listed())))

    def start_superset(self) -> None:
        """Start Superset now through the same launcher jupyter-server-proxy runs; its
        lock keeps the session to one Superset."""
        env = dict(os.environ)
        env.update(serverproxy.superset_environment())
        cmd = [
            c.replace("{base_url}", self.serverapp.base_url).replace("{{", "{").replace("}}", "}")
            for c in serverproxy.superset_command()
        ]
        self.process = subprocess.Popen(
            cmd, env=env, start_new_session=True, preexec_fn=_die_with_parent
        )
        atexit.register(self.stop_superset)

    def stop_superset(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.process.pid, signal.SIGKILL)

    def handlers(self) -> list:
        base = self.serverapp.base_url
        routes = [
            (url_path_join(base, STATUS_PATH), ToolsStatusHandler, {"tools": self}),
        ]
        sqllab = self.states["sqllab"]
        if sqllab.selected and sqllab.available:
            routes.append(
                (url_path_join(base, "sqllab") + "(/.*)?", SqlLabHandler, {"tools": self})
            )
        for name, state in self.states.items():
            offered = state.available and (
                state.selected or (name == "superset" and self.states["sqllab"].selected)
            )
            if offered:
                continue
            if not state.selected and not (name == "superset" and self.states["sqllab"].selected):
                code, reason = (
                    404,
                    f"{TITLES[name]} is not one of this space's tools; "
                    "an owner can add it in the space's settings.",
                )
            else:
                code, reason = 503, state.reason
            routes.append(
                (
                    url_path_join(base, name) + "(/.*)?",
                    NotOfferedHandler,
                    {"tool": name, "status_code": code, "reason": reason},
                )
            )
        return routes


def _load_jupyter_server_extension(serverapp):
    config = SpacesTools(parent=serverapp)
    tools = Tools(serverapp, config)
    serverapp.web_app.add_handlers(".*$", tools.handlers())
    serverapp.web_app.settings["spaces_tools"] = tools
    if config.start_superset and tools.offered_superset:
        tools.start_superset()
        serverapp.log.info("spaces-tools: starting Superset for %s", tools.superset.user)
    serverapp.log.info(
        "spaces-tools: %s",
        ", ".join(
            f"{s.name}={'ok' if s.available else 'unavailable'}" for s in tools.states.values()
        ),
    )


def _jupyter_server_extension_points():
    return [{"module": "jupyterhub_spaces.tools.status"}]


# the name older Jupyter servers look for
load_jupyter_server_extension = _load_jupyter_server_extension
