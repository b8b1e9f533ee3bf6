"""Rights changes in force before the answer: running sessions and database logins
kept in line with the rules.

The spawner decides once, when a session starts, and the databases part issues a
login for the member's role then. When the catalog changes under them (a member
removed or demoted, a subscription revoked, lowered to spaces-only or expired, a
product added that the member lacks) neither may go on as if nothing happened: a
workbench whose user may now only have a sandbox would still let data out, a demoted
editor's login would still write the Collaborative database.

:func:`sessions_to_stop` reads which running sessions the rules no longer allow and
why (the one rule is :func:`jupyterhub_spaces.policy.rights.why_stop`);
:meth:`SessionGuard.enforce` stops them through the hub (waiting until they are
gone), takes back their database logins (closing open connections) and every other
login the rules no longer allow, and audits each with its reason. Handlers await it
after committing a change and before they answer; :class:`ExpiryTimer` runs it when
the next subscription expires (an expiry has no request), and the service runs it
every ``SpaceDatabases.reconcile_interval`` seconds as a safety net.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import orm
from ..databases.base import DatabaseBackend
from ..databases.lifecycle import reconcile, revoke_login
from ..hubapi import HubAPI, HubUnavailable
from ..policy import SubscriptionStatus
from ..policy.rights import why_stop
from ..policy.slugs import server_name
from ..store import Store, audit, decide, running_activations, space_query, suspend_activation
from ..utils import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stop:
    user: str
    space_id: int
    #: the JupyterHub server name of the session
    server: str
    reason: str


def sessions_to_stop(
    db: Session,
    lineage_enforced: bool,
    now: datetime | None = None,
    roles: dict[tuple[int, str], str] | None = None,
) -> list[Stop]:
    """Every starting or active session whose user the rules no longer allow in it,
    in that mode. ``roles`` names the role sessions were started with where a
    caller knows it (``(space_id, user) -> role``: a demotion just made)."""
    now = now or utcnow()
    roles = roles or {}
    running = running_activations(db)
    stops = []
    for space in db.scalars(space_query().where(orm.Space.id.in_(running))):
        sessions = running[space.id]
        decisions = decide(db, [user for user, _ in sessions], space, now, lineage_enforced)
        for user, mode in sessions:
            reason = why_stop(decisions[user], mode=mode, role=roles.get((space.id, user)))
            if reason:
                stops.append(Stop(user, space.id, server_name(space.id), reason))
    return stops


def next_expiry(db: Session, now: datetime | None = None) -> datetime | None:
    """When the next active subscription expires (None: none will)."""
    now = now or utcnow()
    return db.scalar(
        select(func.min(orm.Subscription.expires_at)).where(
            orm.Subscription.status == SubscriptionStatus.active.value, orm.Subscription.expires_at > now
        )
    )


class SessionGuard:
    """Puts rights changes in force: stops sessions, revokes logins, one run at a time.

    ``databases`` is the space databases' backend (None: sessions only)."""

    #: how long a stop may take before the guard answers anyway (seconds)
    stop_wait = 60.0

    def __init__(self, store: Store, hub: HubAPI, lineage_enforced: bool, databases: DatabaseBackend | None = None):
        self.store = store
        self.hub = hub
        self.lineage_enforced = lineage_enforced
        self.databases = databases
        self._lock = asyncio.Lock()
        #: set when a change may move the next expiry (the timer looks again)
        self.expiries_changed = asyncio.Event()

    def _find(self, roles) -> list[Stop]:
        with self.store.transaction() as db:
            return sessions_to_stop(db, self.lineage_enforced, roles=roles)

    def _record(self, stop: Stop, stopped: bool) -> None:
        """The session is suspended, with the reason (so the next run leaves it). The
        spawner may have recorded the suspension already, without a reason."""
        with self.store.transaction() as db:
            suspend_activation(db, stop.space_id, stop.user, stop.reason, recorded=stopped)
            if stopped:
                audit(db, "spaces", "session.stop", "space", stop.space_id, user=stop.user, reason=stop.reason)

    def _revoke_logins(self, stops: list[Stop], space_id, user) -> None:
        """Database logins of the stopped sessions, then every other login the rules
        no longer allow (of ``space_id`` / ``user`` when given): gone, with their
        open connections, before the caller answers."""
        if self.databases is None:
            return
        for stop in stops:
            revoke_login(self.store, self.databases, stop.space_id, stop.user, stop.reason)
        reconcile(self.store, self.databases, self.lineage_enforced, space_id=space_id, user=user)

    async def _stopped(self, user: str, server: str) -> bool:
        """Wait until the hub reports ``user``'s ``server`` stopped (or gone)."""
        deadline = time.monotonic() + self.stop_wait
        while time.monotonic() < deadline:
            model = await self.hub.user(user)
            found = ((model or {}).get("servers") or {}).get(server)
            if not found or found.get("stopped") or (not found.get("ready") and not found.get("pending")):
                return True
            await asyncio.sleep(0.2)
        return False

    async def _stop(self, stop: Stop) -> bool:
        try:
            r = await self.hub.stop_server(stop.user, stop.server)
            if r.status == 202 and not await self._stopped(stop.user, stop.server):
                log.warning("%s's session of %s is still stopping", stop.user, stop.server)
        except HubUnavailable as e:
            log.warning("cannot stop %s's session of %s now (%s); trying again later", stop.user, stop.server, e)
            return False
        if not r.ok and r.status != 404:
            log.warning("stopping %s's session of %s failed: %s", stop.user, stop.server, r.message)
            return False
        # (404: the hub runs no such session, the record was out of date)
        await asyncio.to_thread(self._record, stop, stopped=r.ok)
        if r.ok:
            log.info("stopped %s's session of %s: %s", stop.user, stop.server, stop.reason)
        return r.ok

    async def enforce(
        self,
        *,
        space_id: int | None = None,
        user: str | None = None,
        roles: dict[tuple[int, str], str] | None = None,
    ) -> list[Stop]:
        """Stop every session and revoke every login the rules no longer allow;
        returns the sessions stopped. ``space_id`` / ``user`` narrow the login check
        to what a change can have touched; ``roles`` gives the roles members had
        before a demotion (``(space_id, user) -> role``)."""
        async with self._lock:
            stops = await asyncio.to_thread(self._find, roles)
            done = [stop for stop in stops if await self._stop(stop)]
            # logins go even when the hub cannot be reached: the database is the wall
            await asyncio.to_thread(self._revoke_logins, stops, space_id, user)
            return done

    async def run_once(self) -> list[Stop]:
        return await self.enforce()

    async def run_safely(self, **scope) -> None:
        """:meth:`enforce`, logging instead of raising (after a request's change)."""
        try:
            await self.enforce(**scope)
        except Exception:
            log.exception("putting a rights change in force failed; the next periodic run retries")


class ExpiryTimer:
    """Runs the guard when the next subscription expires: an expiry comes without a
    request, and must not wait for the periodic run. Looks again whenever the guard's
    ``expiries_changed`` is set (a subscription was granted or changed)."""

    #: never sleep longer than this before looking again (seconds)
    longest = 3600.0

    def __init__(self, guard: SessionGuard):
        self.guard = guard
        self._task: asyncio.Task | None = None

    def _delay(self) -> float | None:
        with self.guard.store.transaction() as db:
            when = next_expiry(db)
        if when is None:
            return None
        return max(0.0, (when - utcnow()).total_seconds())

    async def _loop(self) -> None:
        changed = self.guard.expiries_changed
        while True:
            changed.clear()
            try:
                delay = await asyncio.to_thread(self._delay)
            except Exception:
                log.exception("reading the next subscription expiry failed; looking again later")
                delay = None
            wait = self.longest if delay is None else min(delay + 0.05, self.longest)
            try:
                await asyncio.wait_for(changed.wait(), wait)
                continue  # something changed: look again
            except asyncio.TimeoutError:
                pass
            if delay is not None and delay <= self.longest:
                await self.guard.run_safely()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._loop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
