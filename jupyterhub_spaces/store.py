"""The one store of the spaces catalog: engine, transactions, schema revision and the
queries that turn rows into the plain data the policy decides on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, bindparam, create_engine, event, inspect, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from . import orm
from . import policy
from .utils import utcnow

ALEMBIC_DIR = os.path.join(os.path.dirname(__file__), "alembic")


class DatabaseRevisionError(RuntimeError):
    """The database schema is not at the revision this code expects."""


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", ALEMBIC_DIR)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_db(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (``jupyterhub-spaces upgrade-db``)."""
    engine = make_engine(url)
    try:
        migrate(engine, url, revision)
    finally:
        engine.dispose()


def migrate(engine: Engine, url: str, revision: str = "head") -> None:
    """Run the migrations to ``revision`` in one transaction.

    On SQLite, foreign key enforcement is off meanwhile: a migration that recreates a
    table (alembic batch mode) drops the old one, which would otherwise cascade to
    every row that references it. The result is checked before it commits.
    """
    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            # only outside a transaction does SQLite take this pragma
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
            if conn.exec_driver_sql("PRAGMA foreign_keys").scalar() != 0:
                raise RuntimeError("could not turn off SQLite foreign keys for the migration")
            conn.commit()
        try:
            with conn.begin():
                cfg = alembic_config(url)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"the migration left rows with broken references: {broken[:5]}")
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


class Store:
    """The catalog database. Use :meth:`transaction` for every request: it commits
    when the block ends normally and rolls everything back when it raises."""

    def __init__(self, url: str, upgrade: bool = False, **engine_kwargs):
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.check_revision(upgrade=upgrade)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def check_revision(self, upgrade: bool = False) -> None:
        """Create a new database at head; refuse one at another revision unless
        ``upgrade`` is set (as ``jupyterhub-spaces upgrade-db`` does)."""
        head = head_revision()
        current = current_revision(self.engine)
        if current == head:
            return
        fresh = current is None and not inspect(self.engine).get_table_names()
        if not (fresh or upgrade):
            raise DatabaseRevisionError(
                f"the spaces database is at revision {current or '(none)'}, this version of "
                f"jupyterhub-spaces needs {head}: back it up, then run "
                "`jupyterhub-spaces upgrade-db` with the same database URL"
            )
        migrate(self.engine, self.url, "head")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


# ---------------------------------------------------------------------------
# rows -> policy data


def user_by_name(db: Session, name: str) -> orm.User | None:
    return db.scalar(select(orm.User).where(orm.User.name == name))


def space_query():
    return select(orm.Space).options(
        selectinload(orm.Space.owner),
        selectinload(orm.Space.products).selectinload(orm.SpaceProduct.product),
        selectinload(orm.Space.assets)
        .selectinload(orm.SpaceAsset.asset)
        .selectinload(orm.Asset.product),
        selectinload(orm.Space.collaborators).selectinload(orm.Collaborator.user),
    )


def _target(kind: str, row) -> policy.Target:
    return policy.Target(kind, row.id, row.name)


def _upstream_statement():
    edges = orm.LineageEdge.__table__
    walk = (
        select(
            edges.c.asset_id.label("root"),
            edges.c.asset_id,
            edges.c.source_asset_id,
            edges.c.source_product_id,
        )
        .where(edges.c.asset_id.in_(bindparam("asset_ids", expanding=True)))
        .cte("walk", recursive=True)
    )
    deeper = edges.alias("deeper")
    # UNION, not UNION ALL: a row already found is not walked again (and a cycle ends)
    walk = walk.union(
        select(
            walk.c.root, deeper.c.asset_id, deeper.c.source_asset_id, deeper.c.source_product_id
        ).where(deeper.c.asset_id == walk.c.source_asset_id)
    )
    product = orm.Product.__table__.alias("product")
    source = orm.Asset.__table__.alias("source")
    source_product = orm.Product.__table__.alias("source_product")
    return select(
        walk.c.root,
        walk.c.asset_id,
        product.c.id,
        product.c.name,
        source.c.id,
        source.c.name,
        source.c.derived,
        source.c.product_id,
        source_product.c.name,
    ).select_from(
        walk.outerjoin(product, product.c.id == walk.c.source_product_id)
        .outerjoin(source, source.c.id == walk.c.source_asset_id)
        .outerjoin(source_product, source_product.c.id == source.c.product_id)
    )


#: built once: building and keying a statement this size costs more than running it
_UPSTREAM = _upstream_statement()


def upstream_of(db: Session, asset_ids: list[int]) -> dict[int, tuple[set, set]]:
    """For each derived asset id: (contributing products, contributing primary assets),
    found by one recursive query over the lineage edges.

    The walk follows edges through derived sources to their own sources; what ends a
    path counts: products, primary assets, and derived sources without lineage of
    their own (those cannot say what they need, so they need a subscription to
    themselves, never nothing). Plain rows, no ORM objects: this runs on every access
    decision.
    """
    if not asset_ids:
        return {}
    rows = db.execute(_UPSTREAM, {"asset_ids": list(asset_ids)}).all()
    # which assets have edges of their own, per walk (the walk visits every edge of
    # every asset it reaches)
    walked: dict[int, set[int]] = {}
    for row in rows:
        walked.setdefault(row[0], set()).add(row[1])
    found: dict[int, tuple[set, set]] = {i: (set(), set()) for i in asset_ids}
    for (root, _owner, product_id, product_name, asset_id, asset_name, derived,
         asset_product, asset_product_name) in rows:
        if product_id is not None:
            found[root][0].add(policy.Target("product", product_id, product_name))
        elif asset_id is not None and (not derived or asset_id not in walked[root]):
            found[root][1].add(
                policy.AssetRef(
                    id=asset_id,
                    name=asset_name,
                    product_id=asset_product,
                    product_name=asset_product_name or "",
                )
            )
    return found


def asset_ref(asset: orm.Asset, upstream: tuple[set, set] | None = None) -> policy.AssetRef:
    products, assets = upstream or ((), ())
    return policy.AssetRef(
        id=asset.id,
        name=asset.name,
        product_id=asset.product_id,
        product_name=asset.product.name if asset.product else "",
        upstream_products=tuple(sorted(products, key=lambda t: t.id)),
        upstream_assets=tuple(sorted(assets, key=lambda a: a.id)),
    )


def space_spec(db: Session, space: orm.Space) -> policy.SpaceSpec:
    """The policy's view of ``space`` (lineage of its derived assets included)."""
    derived = [sa.asset.id for sa in space.assets if sa.asset.derived]
    upstream = upstream_of(db, derived)
    return policy.SpaceSpec(
        id=space.id,
        owner=space.owner.name,
        products=tuple(_target("product", sp.product) for sp in space.products),
        assets=tuple(asset_ref(sa.asset, upstream.get(sa.asset.id)) for sa in space.assets),
        collaborators=tuple(
            (c.user.name, policy.Role(c.role)) for c in space.collaborators
        ),
    )


def subscription_value(sub: orm.Subscription, user_name: str) -> policy.Subscription:
    target = (
        _target("product", sub.product) if sub.product_id is not None else _target("asset", sub.asset)
    )
    return policy.Subscription(
        user=user_name,
        target=target,
        level=policy.Level(sub.level),
        status=policy.SubscriptionStatus(sub.status),
        expires_at=sub.expires_at,
    )


def _subscriptions_statement():
    # rows for subscription_values(); the caller binds the list "user_names"
    sub, user = orm.Subscription.__table__, orm.User.__table__
    product, asset = orm.Product.__table__, orm.Asset.__table__
    return (
        select(
            user.c.name, sub.c.product_id, product.c.name, sub.c.asset_id, asset.c.name,
            sub.c.level, sub.c.status, sub.c.expires_at,
        )
        .select_from(
            sub.join(user, sub.c.user_id == user.c.id)
            .outerjoin(product, product.c.id == sub.c.product_id)
            .outerjoin(asset, asset.c.id == sub.c.asset_id)
        )
        .where(user.c.name.in_(bindparam("user_names", expanding=True)))
    )


SUBSCRIPTIONS = _subscriptions_statement()


def user_subscriptions(db: Session, user_names: list[str]) -> list[policy.Subscription]:
    """Every subscription of ``user_names`` as policy values (one query, plain rows:
    this runs on every access decision)."""
    return subscription_values(db.execute(SUBSCRIPTIONS, {"user_names": list(user_names)}))


def subscription_values(rows) -> list[policy.Subscription]:
    """Policy values from rows of (user name, product id, product name, asset id,
    asset name, level, status, expires_at)."""
    return [
        policy.Subscription(
            user=name,
            target=policy.Target("product", product_id, product_name)
            if product_id is not None
            else policy.Target("asset", asset_id, asset_name),
            level=policy.Level(level),
            status=policy.SubscriptionStatus(status),
            expires_at=expires_at,
        )
        for name, product_id, product_name, asset_id, asset_name, level, status, expires_at in rows
    ]


def decide(
    db: Session,
    user_names: list[str],
    space: orm.Space,
    now: datetime | None = None,
    lineage_enforced: bool = True,
) -> dict[str, policy.Decision]:
    """The access decision for each of ``user_names`` in ``space``, from the store."""
    now = now or utcnow()
    spec = space_spec(db, space)
    subs = user_subscriptions(db, user_names)
    return {
        name: policy.decide(name, spec, subs, now, lineage_enforced=lineage_enforced)
        for name in user_names
    }


def audit(
    db: Session,
    actor: str,
    action: str,
    target_type: str = "",
    target_id: object = "",
    outcome: str = "ok",
    **detail,
) -> orm.AuditEvent:
    """Record a governance decision or change in the same transaction as the change."""
    event_row = orm.AuditEvent(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        outcome=outcome,
        detail=detail,
    )
    db.add(event_row)
    return event_row
