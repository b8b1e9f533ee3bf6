"""Activating, suspending and watching a space's session.

A space's session is the caller's JupyterHub named server ``space-<id>`` (``policy.server_name``).
The service checks the policy first (so the Spaces app can say why a space is locked
without starting anything), then asks the hub to start the server; the spawner checks
everything again, because users may call the hub API directly.

- ``POST /api/v1/spaces/{id}/activate``: start the session; 409 naming the active space
  when another space is active or starting. ``?switch=true`` suspends that space first.
- ``POST /api/v1/spaces/{id}/suspend``: stop the session (working files are kept).
- ``GET /api/v1/spaces/{id}/status``: active, starting, stopping, suspended, failed
  (with the reason) or inactive.
- ``GET /api/v1/spaces/{id}/progress``: the hub's spawn progress, as server-sent events.
- ``GET /api/v1/spaces/{id}/tools``: each selected tool's status in the running session
  (``waiting`` until the session answers).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from sqlalchemy import select
from tornado.iostream import StreamClosedError

from ... import orm, policy
from ...hubapi import HubUnavailable, server_phase
from ...store import ActivationState, activation, audit, decide, space_query
from ..base import APIError, APIHandler, no_space

TOOL_STATES = ("waiting", "ready", "unavailable")

#: how long a switch waits for the previous session to stop
SWITCH_STOP_TIMEOUT = 120


@dataclass
class SpaceInfo:
    id: int
    slug: str
    #: the JupyterHub named-server name of the caller's session of the space
    server: str
    display_name: str
    tools: list
    decision: policy.Decision


class ActivationBase(APIHandler):
    """Shared lookups. Database work happens in short transactions of its own, never
    across a call to the hub: the spawner writes the activation state meanwhile."""

    def load_space(self, raw_id: str, need: str = "activate") -> SpaceInfo:
        """The space and the caller's decision; 404 for strangers, 403 (audited) when
        the policy refuses ``need``."""
        if self.is_service:
            raise APIError(403, "spaces are activated by users: call this with a user's token")
        space_id = self.id_argument(raw_id, "space")
        with self.store.transaction() as db:
            space = db.scalar(space_query().where(orm.Space.id == space_id))
            if space is None:
                raise no_space(space_id)
            decision = decide(
                db, [self.user_name], space, lineage_enforced=self.spaces_settings.lineage_enforced
            )[self.user_name]
            info = SpaceInfo(space.id, space.slug, policy.server_name(space.id), space.display_name, list(space.tools or []), decision)
        if decision.mode == policy.Mode.not_member:
            raise no_space(space_id)
        if need == "activate" and decision.mode == policy.Mode.locked:
            raise APIError(
                403,
                f"space {info.display_name!r} is {decision.reason}",
                audit={
                    "action": "space.activate",
                    "target_type": "space",
                    "target_id": info.id,
                    "missing": [m.target.name for m in decision.missing],
                    "via": "service",
                },
            )
        return info

    async def hub_model(self) -> dict:
        try:
            model = await self.hub.user(self.user_name)
        except HubUnavailable as e:
            raise APIError(503, f"{e}: try again when the hub is back")
        if model is None:
            raise APIError(
                502, f"the hub does not know user {self.user_name!r} or refused to say: "
                "check the spaces service's role (needs read:users and servers)"
            )
        return model

    def activation_row(self, space_id: int) -> dict | None:
        with self.store.transaction() as db:
            return activation(db, space_id, self.user_name)

    def status_of(self, info: SpaceInfo, user_model: dict) -> dict:
        server = (user_model.get("servers") or {}).get(info.server)
        phase = server_phase(server)
        row = self.activation_row(info.id)
        reason = ""
        if phase != "stopped":
            state = phase
        elif row and row["state"] == ActivationState.failed:
            state, reason = ActivationState.failed.value, row["reason"]
        elif row:
            state, reason = ActivationState.suspended.value, row["reason"]
        else:
            state = "inactive"
        prefix = self.service.service_prefix
        return {
            "space_id": info.id,
            "slug": info.slug,
            "server": info.server,
            "display_name": info.display_name,
            "state": state,
            "reason": reason,
            "mode": (row or {}).get("mode") or info.decision.mode.value,
            "url": server.get("url") if server and phase == "active" else None,
            "progress_url": f"{prefix}api/v1/spaces/{info.id}/progress",
            "updated_at": (row or {}).get("updated_at"),
        }

    def other_active(self, user_model: dict, server_name: str) -> list[str]:
        return [
            name
            for name, server in (user_model.get("servers") or {}).items()
            if name != server_name and server_phase(server) != "stopped"
        ]

    def display_names(self, server_names: list[str]) -> dict[str, str]:
        """The display names of the spaces whose sessions are ``server_names``."""
        ids = {policy.space_id_of(name): name for name in server_names}
        ids.pop(None, None)
        with self.store.transaction() as db:
            rows = db.execute(select(orm.Space.id, orm.Space.display_name).where(orm.Space.id.in_(ids)))
            return {ids[space_id]: name for space_id, name in rows}


class ActivateHandler(ActivationBase):
    """``POST /api/v1/spaces/{id}/activate[?switch=true]``"""

    async def post(self, raw_id):
        # members whose subscriptions cover the space (the spawner checks again)
        info = self.load_space(raw_id)
        switch = self.get_argument("switch", "false").lower() in ("1", "true", "yes")
        model = await self.hub_model()
        phase = server_phase((model.get("servers") or {}).get(info.server))
        others = self.other_active(model, info.server)
        if others and not switch:
            names = self.display_names(others)
            message = policy.one_active_conflict(info.server, others) or ""
            raise APIError(
                409,
                f"{message} (active: {names.get(others[0], others[0])})",
                audit={"action": "space.activate", "target_type": "space", "target_id": info.id,
                       "active": others, "via": "service"},
            )
        if phase in ("active", "starting"):
            self.write_json(self.status_of(info, model), 200 if phase == "active" else 202)
            return
        for other in others:
            await self.suspend_and_wait(other)
        try:
            r = await self.hub.start_server(
                self.user_name, info.server, info.display_name, {"space_id": info.id}
            )
        except HubUnavailable as e:
            raise APIError(503, f"{e}: try again when the hub is back")
        if not r.ok:
            # the spawner's own refusal (409 another space, 403 locked, ...) as it said it
            raise APIError(r.status if 400 <= r.status < 600 else 502, r.message)
        with self.store.transaction() as db:
            audit(db, self.user_name, "space.activate", "space", info.id,
                  mode=info.decision.mode.value, switched_from=others)
        model = await self.hub_model()
        self.write_json(self.status_of(info, model), 202 if r.status == 202 else 200)

    async def suspend_and_wait(self, server_name: str) -> None:
        r = await self.hub.stop_server(self.user_name, server_name)
        if not r.ok and r.status != 404:
            raise APIError(r.status, f"could not suspend space {server_name!r} before switching: {r.message}")
        deadline = time.monotonic() + SWITCH_STOP_TIMEOUT
        while time.monotonic() < deadline:
            model = await self.hub_model()
            if server_phase((model.get("servers") or {}).get(server_name)) == "stopped":
                return
            await asyncio.sleep(0.2)
        raise APIError(504, f"space {server_name!r} did not stop within {SWITCH_STOP_TIMEOUT}s: try again")


class SuspendHandler(ActivationBase):
    """``POST /api/v1/spaces/{id}/suspend``"""

    async def post(self, raw_id):
        # members, whatever their subscriptions now: everyone may stop their own session
        info = self.load_space(raw_id, need="suspend")
        try:
            r = await self.hub.stop_server(self.user_name, info.server)
        except HubUnavailable as e:
            raise APIError(503, f"{e}: try again when the hub is back")
        if not r.ok and r.status != 404:
            raise APIError(r.status, f"could not suspend space {info.display_name!r}: {r.message}")
        with self.store.transaction() as db:
            audit(db, self.user_name, "space.suspend", "space", info.id)
        model = await self.hub_model()
        self.write_json(self.status_of(info, model), 202 if r.status == 202 else 200)


class StatusHandler(ActivationBase):
    """``GET /api/v1/spaces/{id}/status``"""

    async def get(self, raw_id):
        # members
        info = self.load_space(raw_id, need="read")
        self.write_json(self.status_of(info, await self.hub_model()))


class ProgressHandler(ActivationBase):
    """``GET /api/v1/spaces/{id}/progress``: the hub's event stream, relayed."""

    def set_default_headers(self):
        super().set_default_headers()
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("X-Accel-Buffering", "no")

    async def get(self, raw_id):
        # members
        info = self.load_space(raw_id, need="read")
        closed = False

        def relay(chunk: bytes):
            nonlocal closed
            if closed:
                return
            try:
                self.write(chunk)
                self.flush()
            except StreamClosedError:
                closed = True

        try:
            r = await self.hub.stream_progress(self.user_name, info.server, relay)
        except HubUnavailable as e:
            raise APIError(503, f"{e}: try again when the hub is back")
        if r.status in (400, 404) and not closed:
            # the hub has no spawn to follow (never started, not started now, or it just
            # finished): answer
            # with one final event from the session's state, so a client always gets
            # a stream that ends ready or failed
            status = self.status_of(info, await self.hub_model())
            if status["state"] == "active":
                event = {"progress": 100, "ready": True, "url": status["url"],
                         "message": f"Server ready at {status['url']}"}
            else:
                event = {"progress": 100, "failed": True,
                         "message": status["reason"] or f"space {info.display_name!r} is {status['state']}"}
            self.write(f"data: {json.dumps(event)}\n\n")
        elif not r.ok:
            raise APIError(r.status, f"no progress for space {info.display_name!r}: {r.message}")
        if not closed:
            self.finish()


class ToolsHandler(ActivationBase):
    """``GET /api/v1/spaces/{id}/tools``"""

    async def get(self, raw_id):
        # members
        info = self.load_space(raw_id, need="read")
        model = await self.hub_model()
        server = (model.get("servers") or {}).get(info.server)
        phase = server_phase(server)
        waiting = [
            {"name": t, "status": "waiting", "reason": f"the session is {phase}", "url": None}
            for t in info.tools
        ]
        state = (server or {}).get("state") or {}
        session_url, session_token = state.get("session_url"), state.get("session_token")
        if phase == "active" and not (session_url and session_token):
            for t in waiting:
                t["reason"] = (
                    "the spaces service cannot see where the session listens: the hub "
                    "must grant the service's role the admin:server_state scope"
                )
        if phase != "active" or not (session_url and session_token):
            self.write_json({"space_id": info.id, "state": phase, "tools": waiting})
            return
        try:
            r = await self.hub.session_get(session_url, "spaces-tools/status", session_token)
        except HubUnavailable:
            r = None
        if r is None or not r.ok or not isinstance(r.json, dict):
            for t in waiting:
                t["reason"] = "the session has not answered yet"
            self.write_json({"space_id": info.id, "state": phase, "tools": waiting})
            return
        reported = {t.get("name"): t for t in r.json.get("tools", []) if isinstance(t, dict)}
        tools = []
        for name in info.tools:
            t = reported.get(name)
            if t is None:
                tools.append({"name": name, "status": "waiting", "reason": "not reported yet", "url": None})
            else:
                # the session is the user's own process: keep only well-formed values
                status = t.get("status") if t.get("status") in TOOL_STATES else "unavailable"
                url = t.get("url") if isinstance(t.get("url"), str) else None
                tools.append({
                    "name": name,
                    "status": status,
                    "reason": str(t.get("reason") or "")[:500],
                    "url": url,
                })
        self.write_json({"space_id": info.id, "state": phase, "tools": tools})


default_handlers = [
    (r"api/v1/spaces/([^/]+)/activate", ActivateHandler),
    (r"api/v1/spaces/([^/]+)/suspend", SuspendHandler),
    (r"api/v1/spaces/([^/]+)/status", StatusHandler),
    (r"api/v1/spaces/([^/]+)/progress", ProgressHandler),
    (r"api/v1/spaces/([^/]+)/tools", ToolsHandler),
]
