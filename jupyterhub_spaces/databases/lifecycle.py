"""Keeping issued credentials in line with the catalog.

A login is issued at activation and revoked at suspend by the session part. Between
the two the catalog can change under it: the member is removed, their subscription
lapses or is revoked, the member is demoted, the space is deleted. :func:`reconcile`
compares every issued login with the catalog and the policy (the one rule,
:func:`jupyterhub_spaces.policy.rights.why_stop`) and revokes those that no longer
hold. The service's session guard runs it before answering a change
(:mod:`jupyterhub_spaces.service.guard`); :class:`Reconciler` runs it and the snapshot
sweep periodically as the safety net.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from .. import orm
from ..policy.rights import why_stop
from ..store import Store, audit, decide, space_query
from ..tasks.identity import parse_identity
from ..utils import utcnow
from .base import DatabaseBackend, Issued
from .publish import sweep_snapshots

log = logging.getLogger(__name__)


def _why_revoke(db, item: Issued, lineage_enforced: bool, now: datetime) -> str | None:
    space = db.scalar(space_query().where(orm.Space.id == item.space_id))
    user = item.user
    run = parse_identity(item.user)
    if run is not None:
        # a Task run's own login: it lives while its run runs, with its owner's rights
        user, run_id = run
        row = db.get(orm.TaskRun, run_id)
        if row is None or row.state != "running":
            return "the task run ended"
    decision = decide(db, [user], space, now, lineage_enforced)[user] if space else None
    return why_stop(decision, role=item.role)


def reconcile(
    store: Store,
    dbs: DatabaseBackend,
    lineage_enforced: bool = True,
    now: datetime | None = None,
    space_id: int | None = None,
    user: str | None = None,
) -> list[Issued]:
    """Revoke every issued login the catalog no longer allows (only those of
    ``space_id`` and of ``user`` when given); returns those revoked. Each revocation
    is audited.
    """
    now = now or utcnow()
    revoked = []
    for item in dbs.issued():
        if space_id is not None and item.space_id != space_id:
            continue
        if user is not None and item.user != user and (parse_identity(item.user) or ("",))[0] != user:
            continue  # neither the member's login nor one of their task runs
        with store.transaction() as db:
            reason = _why_revoke(db, item, lineage_enforced, now)
        if reason is None:
            continue
        if dbs.revoke(item.space_id, item.user):
            revoked.append(item)
            log.info("revoked the databases login of %s in space %s: %s", item.user, item.space_id, reason)
            with store.transaction() as db:
                audit(
                    db, "spaces", "databases.revoke", "space", item.space_id,
                    user=item.user, reason=reason,
                )
    return revoked


class Reconciler:
    """Runs :func:`reconcile` and :func:`~.publish.sweep_snapshots` every ``interval``
    seconds in the service's event loop (the work itself runs in a thread)."""

    def __init__(self, store: Store, dbs: DatabaseBackend, settings, interval: float, snapshot_prefix: str):
        self.store = store
        self.dbs = dbs
        self.settings = settings
        self.interval = interval
        self.snapshot_prefix = snapshot_prefix
        self._task: asyncio.Task | None = None

    def run_once(self) -> None:
        reconcile(self.store, self.dbs, self.settings.lineage_enforced)
        with self.store.transaction() as db:
            dropped = sweep_snapshots(
                db, self.settings.source_db_url, self.snapshot_prefix, timedelta(hours=1)
            )
        if dropped:
            log.info("dropped snapshots of interrupted publishes: %s", ", ".join(dropped))

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("reconciling the space databases failed; trying again later")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self.interval > 0 and self._task is None:
            self._task = asyncio.ensure_future(self._loop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
