"""Running sessions kept in line with the rules.

The spawner decides once, when a session starts. When the catalog changes under a
running session (its user removed from the space, a subscription revoked, expired or
lowered to spaces-only, a product added that the user lacks) the session must not go
on as if nothing happened: a workbench session whose user may now only have a
sandbox would still let data out.

:func:`sessions_to_stop` reads which running sessions the rules no longer allow and
why; :class:`SessionGuard` stops them through the hub and audits each stop. The
service runs the guard right after a change that can cause this (subscriptions, a
space's products and assets) and every ``SpaceDatabases.reconcile_interval`` seconds
for what changes without a request (an expiry passing).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .. import orm
from ..hubapi import HubAPI, HubUnavailable
from ..store import Store, audit, decide, space_query
from ..utils import utcnow

log = logging.getLogger(__name__)

RUNNING = ("starting", "active")


@dataclass(frozen=True)
class Stop:
    user: str
    space_id: int
    slug: str
    reason: str


def _why_stop(decision, started_mode: str | None) -> str | None:
    if decision.role is None:
        return "no longer a member of the space"
    if not decision.can_activate:
        return decision.reason
    if started_mode and decision.mode.value != started_mode:
        return f"the session started as {started_mode} but the rules now give {decision.mode.value}: activate again"
    return None


def sessions_to_stop(db: Session, lineage_enforced: bool, now: datetime | None = None) -> list[Stop]:
    """Every starting or active session whose user the rules no longer allow in it,
    in that mode."""
    now = now or utcnow()
    running: dict[int, list[tuple[str, str | None]]] = {}
    for space_id, user, mode in db.execute(
        select(orm.Activation.space_id, orm.User.name, orm.Activation.mode)
        .join(orm.User, orm.User.id == orm.Activation.user_id)
        .where(orm.Activation.state.in_(RUNNING))
    ):
        running.setdefault(space_id, []).append((user, mode))
    stops = []
    for space in db.scalars(space_query().where(orm.Space.id.in_(running))):
        sessions = running[space.id]
        decisions = decide(db, [user for user, _ in sessions], space, now, lineage_enforced)
        for user, mode in sessions:
            reason = _why_stop(decisions[user], mode)
            if reason:
                stops.append(Stop(user, space.id, space.slug, reason))
    return stops


class SessionGuard:
    """Stops the sessions :func:`sessions_to_stop` names, one run at a time."""

    def __init__(self, store: Store, hub: HubAPI, lineage_enforced: bool):
        self.store = store
        self.hub = hub
        self.lineage_enforced = lineage_enforced
        self._lock = asyncio.Lock()

    def _find(self) -> list[Stop]:
        with self.store.transaction() as db:
            return sessions_to_stop(db, self.lineage_enforced)

    def _record(self, stop: Stop, stopped: bool) -> None:
        """The session is suspended, with the reason (so the next run leaves it). The
        spawner may have recorded the suspension already, without a reason."""
        states = (*RUNNING, "suspended") if stopped else RUNNING
        with self.store.transaction() as db:
            db.execute(
                update(orm.Activation)
                .where(
                    orm.Activation.space_id == stop.space_id,
                    orm.Activation.user_id == select(orm.User.id).where(orm.User.name == stop.user).scalar_subquery(),
                    orm.Activation.state.in_(states),
                )
                .values(state="suspended", reason=stop.reason, updated_at=utcnow())
            )
            if stopped:
                audit(db, "spaces", "session.stop", "space", stop.space_id, user=stop.user, reason=stop.reason)

    async def run_once(self) -> list[Stop]:
        async with self._lock:
            done = []
            for stop in await asyncio.to_thread(self._find):
                try:
                    r = await self.hub.stop_server(stop.user, stop.slug)
                except HubUnavailable as e:
                    log.warning("cannot stop %s's session of %s now (%s); trying again later", stop.user, stop.slug, e)
                    continue
                if not r.ok and r.status != 404:
                    log.warning("stopping %s's session of %s failed: %s", stop.user, stop.slug, r.message)
                    continue
                # (404: the hub runs no such session, the record was out of date)
                await asyncio.to_thread(self._record, stop, stopped=r.ok)
                if r.ok:
                    log.info("stopped %s's session of %s: %s", stop.user, stop.slug, stop.reason)
                    done.append(stop)
            return done

    async def run_safely(self) -> None:
        """:meth:`run_once`, logging instead of raising (for after a request's change)."""
        try:
            await self.run_once()
        except Exception:
            log.exception("checking running sessions against the rules failed; the next periodic run retries")
