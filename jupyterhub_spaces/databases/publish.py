"""Publishing a table of a space's Publish database as a derived asset.

A publish writes three things that must stand or fall together:

1. a **snapshot**: a copy of the table in the source database
   (``SpacesSettings.source_db_url``), named ``<snapshot_prefix><asset id>_<stamp>``,
   so the derived asset is used in other spaces exactly like a primary one;
2. the **catalog entry**: an :class:`~jupyterhub_spaces.orm.Asset` with
   ``derived=True`` and ``source_space_id``;
3. its **lineage**: one :class:`~jupyterhub_spaces.orm.LineageEdge` to every product
   and every asset the space's data may hold rows of: its spec *and its taint*
   (:func:`jupyterhub_spaces.policy.lineage_sources`), not the spec alone; and its
   closure, everything those reach (:func:`jupyterhub_spaces.store.record_lineage`),
   which access decisions read instead of walking the edges.

Only data is copied, with the member's own rights: the table must be a plain table
(no view, materialized view, foreign or virtual table, no row-level security or
rules), and it is read on the backend's :meth:`~.base.DatabaseBackend.publish_reader`
connection, which has exactly the rights of the member's role in the space, so
nothing a member defined runs with more rights than theirs and nothing outside
what they may read can be laundered through a publish.

The catalog rows are written in the caller's transaction. The snapshot lives in
another database, so it is tied to that transaction: it is dropped when the
publish fails after writing it, and when the caller's transaction rolls back for any
reason (a listener on the session). A process killed between the two commits leaves
a prefixed table no asset names; :func:`sweep_snapshots` drops those.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import MetaData, Table, event, func, inspect, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .. import orm
from ..policy import Role, allowed, lineage_sources
from ..store import audit, make_engine, record_lineage, space_spec
from ..utils import utcnow
from . import copy as copy_mod
from .base import DatabaseBackend, PublishError

__all__ = ["PublishError", "Snapshot", "check_name", "publish", "sweep_snapshots"]

log = logging.getLogger(__name__)

MAX_NAME = 200
_STAMP = "%Y%m%d%H%M%S"


class Snapshot:
    """A table written into the source database by one publish, until its catalog
    entry is committed."""

    def __init__(self, source_db_url: str, name: str):
        self.source_db_url = source_db_url
        self.name = name
        self.written = False
        self.kept = False

    def write(self, src, table: str, schema: str | None) -> int:
        """Copy ``schema.table`` from the connection ``src`` into the source database;
        returns rows."""
        target = make_engine(self.source_db_url)
        try:
            with target.begin() as dst:
                self.written = True  # from here on a failure may leave a table behind
                copy_mod.copy_table(src, table, dst, self.name, schema, replace=False)
                return dst.scalar(
                    select(func.count()).select_from(
                        Table(self.name, MetaData(), autoload_with=dst)
                    )
                )
        finally:
            target.dispose()

    def drop(self) -> None:
        if not self.written or self.kept:
            return
        target = make_engine(self.source_db_url)
        try:
            with target.begin() as conn:
                if inspect(conn).has_table(self.name):
                    Table(self.name, MetaData(), autoload_with=conn).drop(conn)
            self.written = False
            log.info("dropped snapshot %s of a publish that did not complete", self.name)
        except Exception:
            log.exception(
                "could not drop snapshot %s of a failed publish; reconcile will sweep it",
                self.name,
            )
        finally:
            target.dispose()


def _tie_to_transaction(db: Session, snapshot: Snapshot) -> None:
    """Drop ``snapshot`` when ``db``'s outermost transaction ends without committing."""
    state = {"committed": False}

    def committed(session):
        state["committed"] = True
        snapshot.kept = True

    def ended(session, transaction):
        if transaction.parent is None and not state["committed"]:
            snapshot.drop()

    event.listen(db, "after_commit", committed, once=True)
    event.listen(db, "after_transaction_end", ended)


def check_name(name: object) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return "give the derived asset a name"
    if len(name) > MAX_NAME:
        return f"the name is longer than {MAX_NAME} characters"
    return None


def publish(
    db: Session,
    dbs: DatabaseBackend,
    space: orm.Space,
    user: orm.User,
    role: Role | None,
    table: str,
    name: str,
    description: str = "",
    snapshot_prefix: str = "spaces_derived_",
) -> orm.Asset:
    """Publish ``table`` of ``space``'s Publish database as a new derived asset.

    Raises :class:`PublishError` (nothing written) when ``role`` may not publish, the
    table does not exist, is not a plain table or cannot be read with the member's
    rights, or the name is unusable. The returned asset is flushed, not
    committed: the caller's transaction decides, and the snapshot follows it.
    """
    if not allowed(role, "publish"):
        raise PublishError(
            403,
            f"{user.name} is {'a ' + Role(role).value if role else 'not a member'} of space "
            f"{space.slug}: only its owners and publishers may publish; ask the owner for "
            "the publisher role",
        )
    problem = check_name(name)
    if problem:
        raise PublishError(422, f"name: {problem}", {"name": problem})
    if not isinstance(table, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]{0,62}", table):
        raise _no_table(table, space)
    with dbs.publish_reader(space.id, role) as (conn, schema):
        kind = dbs.publish_table_kind(conn, schema, table)
        if kind is None:
            raise _no_table(table, space)
        if kind != "table":
            raise PublishError(
                422,
                f"{table!r} in the Publish database of space {space.slug} is a {kind}, not a "
                "plain table: only plain tables are published, read as data with your own "
                "rights (a view, rule or policy would run a query of its own). Make a plain "
                f"table of its rows first, e.g. CREATE TABLE {table}_data AS SELECT * FROM "
                f"{table}, and publish that",
                {"table": f"a {kind}, not a plain table"},
            )
        return _publish(db, dbs, space, user, conn, schema, table, name, description, snapshot_prefix)


def _no_table(table, space) -> PublishError:
    return PublishError(
        404,
        f"no table {table!r} in the Publish database of space {space.slug}: write it "
        "there first (SPACES_PUBLISH_DB_URL in the session) and give its exact name",
        {"table": "no such table in the Publish database"},
    )


def _publish(db, dbs, space, user, conn, schema, table, name, description, snapshot_prefix):
    asset = orm.Asset(
        name=name.strip(),
        description=description or "",
        kind="table",
        location="",
        product_id=None,
        owner_org_id=user.org_id or space.owner.org_id,
        derived=True,
        source_space_id=space.id,
        created_by=user.name,
    )
    db.add(asset)
    db.flush()
    # the data may hold rows of anything ever part of the space, not only of its spec
    products, assets = lineage_sources(space_spec(db, space))
    record_lineage(db, asset.id, [p.id for p in products], [a.id for a in assets])
    sources = [f"product:{p.id}" for p in products] + [f"asset:{a.id}" for a in assets]

    stamp = utcnow().strftime(_STAMP)
    snapshot = Snapshot(
        dbs.source_db_url, f"{snapshot_prefix}{asset.id}_{stamp}_{secrets.token_hex(2)}"
    )
    _tie_to_transaction(db, snapshot)
    try:
        try:
            rows = snapshot.write(conn, table, schema)
        except DBAPIError as e:
            refusal = _read_refusal(e, table)
            if refusal is None:
                raise
            raise refusal from e
        asset.location = snapshot.name
        audit(
            db,
            user.name,
            "asset.publish",
            "asset",
            asset.id,
            space_id=space.id,
            table=table,
            snapshot=snapshot.name,
            rows=rows,
            sources=sources,
        )
        db.flush()
    except Exception:
        snapshot.drop()
        raise
    return asset


def _read_refusal(error: DBAPIError, table: str) -> PublishError | None:
    """The refusal for a read the member's own rights do not allow (None for any
    other failure)."""
    code = getattr(error.orig, "sqlstate", None)
    if code == "42501" or "not authorized" in str(error.orig):
        return PublishError(
            403,
            f"your role in the space cannot read all of {table!r} (it needs more than "
            "reading its own rows): publish a plain table of data you wrote",
            {"table": "not readable with your rights"},
        )
    return None


def sweep_snapshots(db: Session, source_db_url: str, prefix: str, older_than: timedelta) -> list[str]:
    """Drop snapshot tables no catalog asset names, left by a publish that was killed
    between writing its snapshot and committing its catalog entry. Only tables older
    than ``older_than`` (from the stamp in their name) are touched, so a publish in
    flight keeps its snapshot."""
    named = set(
        db.scalars(select(orm.Asset.location).where(orm.Asset.location.startswith(prefix)))
    )
    cutoff = utcnow() - older_than
    dropped = []
    engine = make_engine(source_db_url)
    try:
        with engine.begin() as conn:
            for table in inspect(conn).get_table_names():
                if not table.startswith(prefix) or table in named:
                    continue
                m = re.fullmatch(re.escape(prefix) + r"\d+_(\d{14})_[0-9a-f]{4}", table)
                if not m:
                    continue
                if datetime.strptime(m.group(1), _STAMP) > cutoff:
                    continue
                Table(table, MetaData(), autoload_with=conn).drop(conn)
                dropped.append(table)
    finally:
        engine.dispose()
    return dropped
