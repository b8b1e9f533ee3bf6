"""Keeping issued credentials in line with the catalog.

A login is issued at activation and revoked at suspend by the session part. Between
the two the catalog can change under it: the member is removed, their subscription
lapses or is revoked, the member is demoted, the space is deleted. :func:`reconcile`
compares every issued login with the catalog and the policy (the one rule,
:func:`jupyterhub_spaces.policy.rights.why_revoke`) and revokes those that no longer
hold. The service's session guard runs it before answering a change
(:mod:`jupyterhub_spaces.service.guard`); :class:`Reconciler` runs it and the snapshot
sweep periodically as the safety net.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import orm
from ..policy import SpaceSpec
from ..policy.rights import why_revoke
from ..store import Store, audit, decide_spec, space_query, space_spec
from ..tasks.identity import parse_identity
from ..utils import utcnow
from .base import DatabaseBackend, Issued
from .publish import sweep_snapshots

log = logging.getLogger(__name__)


def revoke_reasons(
    db: Session,
    items: Iterable[Issued],
    lineage_enforced: bool,
    now: datetime,
    spec: SpaceSpec | None = None,
) -> list[str | None]:
    """For each issued login, why the catalog no longer allows it (None: it does).

    Each space is loaded once and its logins decided together (one query for their
    subscriptions), so a space with many members costs as much as one with few.
    ``spec`` is the space as a caller just loaded it (its logins are decided on it).
    """
    items = list(items)
    owners = []  # (member, run id or None) per login
    for item in items:
        run = parse_identity(item.user)
        owners.append(run if run is not None else (item.user, None))
    run_ids = sorted({run_id for _, run_id in owners if run_id is not None})
    running = set()
    if run_ids:
        running = set(db.scalars(
            select(orm.TaskRun.id).where(orm.TaskRun.id.in_(run_ids), orm.TaskRun.state == "running")
        ))
    specs: dict[int, SpaceSpec | None] = {}
    if spec is not None:
        specs[spec.id] = spec
    wanted = sorted({item.space_id for item in items} - set(specs))
    for space in db.scalars(space_query().where(orm.Space.id.in_(wanted))) if wanted else ():
        specs[space.id] = space_spec(db, space)
    decisions: dict[int, dict] = {}
    for space_id, found in specs.items():
        users = sorted({user for item, (user, _) in zip(items, owners) if item.space_id == space_id})
        if found is not None and users:
            decisions[space_id] = decide_spec(db, users, found, now, lineage_enforced)
    return [
        why_revoke(
            decisions.get(item.space_id, {}).get(user),
            item.role,
            None if run_id is None else run_id in running,
        )
        for item, (user, run_id) in zip(items, owners)
    ]


def revoke_login(store: Store, dbs: DatabaseBackend, space_id: int, user: str, reason: str) -> bool:
    """Revoke ``user``'s login to the databases of ``space_id`` (closing its open
    connections) and audit it with ``reason``; False when there was none."""
    if not dbs.revoke(space_id, user):
        return False
    log.info("revoked the databases login of %s in space %s: %s", user, space_id, reason)
    with store.transaction() as db:
        audit(db, "spaces", "databases.revoke", "space", space_id, user=user, reason=reason)
    return True


def reconcile(
    store: Store,
    dbs: DatabaseBackend,
    lineage_enforced: bool = True,
    now: datetime | None = None,
    space_id: int | None = None,
    user: str | None = None,
    spec: SpaceSpec | None = None,
) -> list[Issued]:
    """Revoke every issued login the catalog no longer allows (only those of
    ``space_id`` and of ``user`` when given); returns those revoked. Each revocation
    is audited. ``spec``: the space ``space_id`` as the caller just loaded it.
    """
    now = now or utcnow()
    items = []
    for item in dbs.issued():
        if space_id is not None and item.space_id != space_id:
            continue
        if user is not None and item.user != user and (parse_identity(item.user) or ("",))[0] != user:
            continue  # neither the member's login nor one of their task runs
        items.append(item)
    if not items:
        return []
    with store.transaction() as db:
        reasons = revoke_reasons(db, items, lineage_enforced, now, spec if space_id is not None else None)
    return [
        item for item, reason in zip(items, reasons)
        if reason is not None and revoke_login(store, dbs, item.space_id, item.user, reason)
    ]


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
