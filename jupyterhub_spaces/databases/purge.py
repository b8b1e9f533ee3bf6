"""Purging a space's databases, and with them its taint.

The Collaborative and Publish data of a space may hold rows of every product and
asset that was ever part of it, so the catalog keeps that set (its taint, see
:class:`~jupyterhub_spaces.orm.SpaceTaint`) for as long as the data lives. Purging
the data is the only thing that shrinks it: back to what the space holds now.
"""

from __future__ import annotations

import logging

from ..store import Store, audit, reset_taint, taint_mark
from .base import DatabaseBackend

log = logging.getLogger(__name__)


def purge(store: Store, dbs: DatabaseBackend, space_id: int, confirm: object, actor: str = "admin") -> None:
    """Delete the databases of ``space_id`` for good (``confirm`` repeats the id), then
    reset the space's taint to its spec. The taint is reset only once the data is
    gone: a purge that fails half-way leaves the space as tainted as it was."""
    if str(confirm) != str(space_id):
        dbs.purge(space_id, confirm=confirm)  # refuses, saying how to confirm
    with store.transaction() as db:
        mark = taint_mark(db, space_id)
    dbs.purge(space_id, confirm=confirm)
    with store.transaction() as db:
        forgotten = reset_taint(db, space_id, mark)
        audit(db, actor, "databases.purge", "space", space_id, taint_forgotten=forgotten)
    log.info("purged the databases of space %s; %s taint entries forgotten", space_id, forgotten)
