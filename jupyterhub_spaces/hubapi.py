"""The one client of the JupyterHub REST API used by the spaces service.

It calls the hub with the service's own token (``JUPYTERHUB_API_TOKEN``). The service's
role needs these scopes (granted in the hub config)::

    servers              start and stop users' named servers (spaces)
    read:users           read users and their servers
    admin:server_state   read a session's address and own token (to ask it for its
                         tools' status; the service token never goes to a session)

Every call returns a :class:`HubResponse`; only unreachable hubs raise
(:class:`HubUnavailable`), so callers decide what each status means for them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


class HubUnavailable(RuntimeError):
    """The hub could not be reached at all."""


@dataclass
class HubResponse:
    status: int
    body: bytes

    @property
    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    @property
    def message(self) -> str:
        """The hub's error message (its JSON ``message``), else the raw body."""
        data = self.json
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"])
        return self.body.decode("utf8", "replace")[:500]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def server_path(user: str, server: str = "") -> str:
    path = f"users/{quote(user, safe='')}"
    return f"{path}/servers/{quote(server, safe='')}" if server else path


class HubAPI:
    """Async client of the hub's REST API (``/hub/api/``)."""

    def __init__(self, api_url: str | None = None, token: str | None = None, timeout: float = 60):
        self.api_url = (api_url or os.environ.get("JUPYTERHUB_API_URL", "")).rstrip("/") + "/"
        self.token = token if token is not None else os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.timeout = timeout
        self.client = AsyncHTTPClient(force_instance=True, defaults={"follow_redirects": False})

    def _request(self, method: str, url: str, body=None, **kwargs) -> HTTPRequest:
        headers = {"Authorization": f"token {self.token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            body = ""
        kwargs.setdefault("request_timeout", self.timeout)
        return HTTPRequest(
            url, method=method, headers=headers, body=body,
            allow_nonstandard_methods=method == "DELETE" and body is not None, **kwargs
        )

    async def fetch(self, method: str, path: str, body=None, url: str | None = None, **kwargs) -> HubResponse:
        """One call; ``path`` is relative to the API URL (or ``url`` is absolute)."""
        request = self._request(method, url or self.api_url + path.lstrip("/"), body, **kwargs)
        try:
            response = await self.client.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as e:
            raise HubUnavailable(f"cannot reach JupyterHub at {request.url}: {e}") from e
        if response.code == 599:
            raise HubUnavailable(f"cannot reach {request.url}: {response.error}")
        return HubResponse(response.code, response.body or b"")

    # -- users and servers ------------------------------------------------

    async def user(self, name: str) -> dict | None:
        """The user's model with every server (``include_stopped_servers``)."""
        r = await self.fetch("GET", server_path(name) + "?include_stopped_servers=1")
        return r.json if r.ok else None

    async def start_server(self, user: str, server: str, display_name: str, user_options: dict) -> HubResponse:
        return await self.fetch(
            "POST",
            server_path(user, server),
            {"display_name": display_name, "user_options": user_options},
        )

    async def stop_server(self, user: str, server: str) -> HubResponse:
        return await self.fetch("DELETE", server_path(user, server))

    async def stream_progress(self, user: str, server: str, on_chunk: Callable[[bytes], None]) -> HubResponse:
        """Relay the hub's server-sent progress events of a spawn to ``on_chunk``.

        Only a 200's body is relayed: an error's body (JSON) is the returned response's,
        never part of the caller's event stream."""
        status = {"code": 0}
        kept: list[bytes] = []

        def on_header(line: str) -> None:
            if line.startswith("HTTP/"):
                parts = line.split(" ", 2)
                status["code"] = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0

        def on_body(chunk: bytes) -> None:
            if status["code"] == 200:
                on_chunk(chunk)
            else:
                kept.append(chunk)

        request = self._request(
            "GET",
            self.api_url + server_path(user, server) + "/progress",
            request_timeout=3600,
            header_callback=on_header,
            streaming_callback=on_body,
        )
        request.headers["Accept"] = "text/event-stream"
        try:
            response = await self.client.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as e:
            raise HubUnavailable(f"cannot reach JupyterHub at {request.url}: {e}") from e
        return HubResponse(response.code, b"".join(kept))

    async def session_get(self, session_url: str, path: str, token: str, timeout: float = 5) -> HubResponse:
        """GET ``path`` from a running session with ``token``: the session's own token
        (the spawner keeps it in the server's state), never the service's, which a
        user-controlled process must not see."""
        request = HTTPRequest(
            session_url.rstrip("/") + "/" + path.lstrip("/"),
            headers={"Authorization": f"token {token}"},
            request_timeout=timeout,
            connect_timeout=timeout,
        )
        try:
            response = await self.client.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as e:
            raise HubUnavailable(f"cannot reach the session at {request.url}: {e}") from e
        if response.code == 599:
            raise HubUnavailable(f"cannot reach the session at {request.url}: {response.error}")
        return HubResponse(response.code, response.body or b"")


def server_phase(model: dict | None) -> str:
    """What the hub says of a server: ``active``, ``starting``, ``stopping`` or ``stopped``."""
    if not model:
        return "stopped"
    if model.get("pending") == "spawn":
        return "starting"
    if model.get("pending") == "stop":
        return "stopping"
    if model.get("ready"):
        return "active"
    if model.get("pending"):
        return "starting"
    return "stopped"
