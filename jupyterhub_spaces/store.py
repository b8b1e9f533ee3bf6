"""The one store of the spaces catalog: engine, transactions, schema revision and the
queries that turn rows into the plain data the policy decides on.

Every catalog read or write that more than one part of the suite needs lives here, once:
the space a session gets (:func:`load_space`, :func:`session_assets`), the access
decision with only the subscriptions that matter (:func:`decide`,
:func:`decide_all`), and the activation record with its states
(:class:`ActivationState`, :func:`record_activation`, :func:`running_activations`).
A process opens one :class:`Store` per catalog URL (:func:`shared`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import Enum

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, bindparam, create_engine, delete, event, func, insert, inspect, or_, select, update
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


_shared: dict[str, Store] = {}
_shared_lock = threading.Lock()


def shared(url: str) -> Store:
    """The one store of this process for the catalog at ``url`` (one engine and one
    connection pool, whoever asks: the spawner, the hub's gate, the session parts and
    the authenticator of a hub process)."""
    store = _shared.get(url)
    if store is None:
        with _shared_lock:
            store = _shared.get(url)
            if store is None:
                store = _shared[url] = Store(url)
    return store


# ---------------------------------------------------------------------------
# rows -> policy data


_REVISION = select(orm.CatalogRevision.value).where(orm.CatalogRevision.id == 1)


def catalog_revision(db: Session) -> int | None:
    """The catalog's revision (:class:`~jupyterhub_spaces.orm.CatalogRevision`): every
    committed write to what answers are built from raises it. Read it in the
    transaction that reads the data, before the data."""
    return db.scalar(_REVISION)


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
        selectinload(orm.Space.taint).selectinload(orm.SpaceTaint.product),
        selectinload(orm.Space.taint)
        .selectinload(orm.SpaceTaint.asset)
        .selectinload(orm.Asset.product),
    )


def _target(kind: str, row) -> policy.Target:
    return policy.Target(kind, row.id, row.name)


def _upstream_statement(leaves_only: bool):
    closure = orm.LineageClosure.__table__
    product = orm.Product.__table__.alias("product")
    source = orm.Asset.__table__.alias("source")
    source_product = orm.Product.__table__.alias("source_product")
    statement = select(
        closure.c.asset_id,
        product.c.id,
        product.c.name,
        source.c.id,
        source.c.name,
        source.c.product_id,
        source_product.c.name,
    ).select_from(
        closure.outerjoin(product, product.c.id == closure.c.source_product_id)
        .outerjoin(source, source.c.id == closure.c.source_asset_id)
        .outerjoin(source_product, source_product.c.id == source.c.product_id)
    ).where(closure.c.asset_id.in_(bindparam("asset_ids", expanding=True)))
    return statement.where(closure.c.leaf) if leaves_only else statement


#: built once: building and keying a statement costs more than running this one
_UPSTREAM = {True: _upstream_statement(True), False: _upstream_statement(False)}


def upstream_of(
    db: Session, asset_ids: list[int], leaves_only: bool = True
) -> dict[int, tuple[set, set]]:
    """For each derived asset id: (products, assets) it was made from, at any depth,
    read from the lineage closure written when it was published (one plain query).

    With ``leaves_only`` (what the access rule needs), only what ends a path:
    products, primary assets, and derived sources without lineage of their own (those
    cannot say what they need, so they need a subscription to themselves, never
    nothing). Without, every derived asset in between too (the lineage graph).
    """
    found: dict[int, tuple[set, set]] = {i: (set(), set()) for i in asset_ids}
    if not asset_ids:
        return found
    rows = db.execute(_UPSTREAM[leaves_only], {"asset_ids": list(asset_ids)})
    for root, product_id, product_name, asset_id, asset_name, asset_product, asset_product_name in rows:
        if product_id is not None:
            found[root][0].add(policy.Target("product", product_id, product_name))
        else:
            found[root][1].add(
                policy.AssetRef(
                    id=asset_id,
                    name=asset_name,
                    product_id=asset_product,
                    product_name=asset_product_name or "",
                )
            )
    return found


def derived_from(db: Session, asset_id: int, product_id: int | None) -> set[int]:
    """The ids of the derived assets made from asset ``asset_id`` at any depth, or
    from its whole product ``product_id`` (for a primary asset), from the closure."""
    closure = orm.LineageClosure.__table__
    made_from = closure.c.source_asset_id == asset_id
    if product_id is not None:
        made_from = or_(made_from, closure.c.source_product_id == product_id)
    return set(db.scalars(select(closure.c.asset_id).where(made_from).distinct()))


_CLOSURES = select(
    orm.LineageClosure.asset_id,
    orm.LineageClosure.source_asset_id,
    orm.LineageClosure.source_product_id,
    orm.LineageClosure.leaf,
).where(orm.LineageClosure.asset_id.in_(bindparam("asset_ids", expanding=True)))


class LineageRecorded(ValueError):
    """The asset has lineage already: published lineage never changes."""


def record_lineage(
    db: Session, asset_id: int, product_ids: Iterable[int], asset_ids: Iterable[int]
) -> None:
    """Write the lineage of the derived asset ``asset_id``, made from the products
    ``product_ids`` and the assets ``asset_ids``: its edges and its closure, in the
    caller's transaction (they stand or fall with the publish).

    The closure is the sources themselves and the closure of each derived source,
    which was complete when that source was published: lineage is only ever written
    for a new asset, after its sources'. One read, two writes. Raises
    :class:`LineageRecorded` when the asset already has lineage.
    """
    product_ids, asset_ids = sorted(set(product_ids)), sorted(set(asset_ids))
    if not (product_ids or asset_ids):
        return
    rows: dict[tuple[int | None, int | None], bool] = {(None, p): True for p in product_ids}
    # a source ends the path (a primary asset, a derived one without lineage) exactly
    # when it has no closure of its own; the one read says which, and what it inherits
    rows.update({(a, None): True for a in asset_ids})
    for owner, source_asset, source_product, leaf in db.execute(
        _CLOSURES, {"asset_ids": [asset_id, *asset_ids]}
    ):
        if owner == asset_id:
            raise LineageRecorded(f"asset {asset_id} has its lineage already; lineage never changes")
        rows[(owner, None)] = False
        rows[(source_asset, source_product)] = leaf
    db.execute(
        insert(orm.LineageEdge),
        [{"asset_id": asset_id, "source_product_id": p, "source_asset_id": None} for p in product_ids]
        + [{"asset_id": asset_id, "source_product_id": None, "source_asset_id": a} for a in asset_ids],
    )
    db.execute(
        insert(orm.LineageClosure),
        [
            {"asset_id": asset_id, "source_asset_id": a, "source_product_id": p, "leaf": bool(leaf)}
            for (a, p), leaf in rows.items()
        ],
    )


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
    """The policy's view of ``space``: its spec, its taint (what was ever part of it
    since its data was last purged) and the lineage of the derived assets of both.

    ``space`` is a row of :func:`space_query` or a view of
    :func:`jupyterhub_spaces.service.queries.space_views` (the same attributes).
    """
    tainted = [t.asset for t in space.taint if t.asset_id is not None]
    derived = {a.id for a in (*(sa.asset for sa in space.assets), *tainted) if a.derived}
    upstream = upstream_of(db, sorted(derived))
    return policy.SpaceSpec(
        id=space.id,
        owner=space.owner.name,
        products=tuple(_target("product", sp.product) for sp in space.products),
        assets=tuple(asset_ref(sa.asset, upstream.get(sa.asset.id)) for sa in space.assets),
        collaborators=tuple(
            (c.user.name, policy.Role(c.role)) for c in space.collaborators
        ),
        taint_products=tuple(
            _target("product", t.product) for t in space.taint if t.product_id is not None
        ),
        taint_assets=tuple(asset_ref(a, upstream.get(a.id)) for a in tainted),
    )


def taint_mark(db: Session, space_id: int) -> tuple[int, set, set]:
    """Where a purge of ``space_id``'s data starts: the last taint row of the space
    and the products and assets of its spec at that moment (see :func:`reset_taint`)."""
    last = db.scalar(
        select(func.max(orm.SpaceTaint.id)).where(orm.SpaceTaint.space_id == space_id)
    )
    products = set(db.scalars(select(orm.SpaceProduct.product_id).where(orm.SpaceProduct.space_id == space_id)))
    assets = set(db.scalars(select(orm.SpaceAsset.asset_id).where(orm.SpaceAsset.space_id == space_id)))
    return last or 0, products, assets


def reset_taint(db: Session, space_id: int, mark: tuple[int, set, set]) -> int:
    """After a purge of the space's data that started at ``mark``: forget what only
    data deleted by the purge could come from. Kept: the spec when the purge started,
    the spec now, and whatever joined the space meanwhile (its rows may have been
    written after the data was dropped). Returns how many rows went."""
    last, products, assets = mark
    products |= set(db.scalars(select(orm.SpaceProduct.product_id).where(orm.SpaceProduct.space_id == space_id)))
    assets |= set(db.scalars(select(orm.SpaceAsset.asset_id).where(orm.SpaceAsset.space_id == space_id)))
    t = orm.SpaceTaint
    gone = db.execute(
        delete(t).where(
            t.space_id == space_id,
            t.id <= last,
            or_(t.product_id.is_(None), t.product_id.not_in(products or [-1])),
            or_(t.asset_id.is_(None), t.asset_id.not_in(assets or [-1])),
        )
    )
    return gone.rowcount


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


def required_keys(specs: Iterable[policy.SpaceSpec], lineage_enforced: bool) -> set[tuple[str, int]]:
    """Every (kind, id) whose subscription could decide access to any of ``specs``."""
    return {
        t.key
        for spec in specs
        for req in policy.requirements(spec, lineage_enforced)
        for t in req.any_of
    }


def _subscriptions_to_statement():
    sub = orm.Subscription.__table__
    return SUBSCRIPTIONS.where(
        or_(
            sub.c.product_id.in_(bindparam("product_ids", expanding=True)),
            sub.c.asset_id.in_(bindparam("asset_ids", expanding=True)),
        )
    )


#: built once: it runs on every access decision, and building it cost more than running it
_SUBSCRIPTIONS_TO = _subscriptions_to_statement()


def subscriptions_to(db: Session, user_names: list[str], keys: set[tuple[str, int]]) -> list[policy.Subscription]:
    """The subscriptions of ``user_names`` to the products and assets in ``keys``, as
    policy values: the database does the filtering, so a space's hundred members with
    a hundred subscriptions each come back as the few rows that matter."""
    product_ids = sorted(i for kind, i in keys if kind == "product")
    asset_ids = sorted(i for kind, i in keys if kind == "asset")
    if not user_names or not (product_ids or asset_ids):
        return []
    rows = db.execute(
        _SUBSCRIPTIONS_TO,
        {"user_names": list(user_names), "product_ids": product_ids, "asset_ids": asset_ids},
    )
    return subscription_values(rows)


def decide_all(
    spec: policy.SpaceSpec,
    subscriptions: Iterable[policy.Subscription],
    users: Iterable[str],
    now: datetime,
    lineage_enforced: bool,
) -> dict[str, policy.Decision]:
    """``policy.decide`` for each of ``users`` in ``spec``, handing each call only the
    subscriptions that can matter (the user's, to the targets the space requires).

    The policy scans every subscription it is given; a member list or a page of spaces
    would otherwise scan every member's whole subscription list once per decision.
    """
    users = list(users)
    keys = required_keys([spec], lineage_enforced)
    relevant: dict[str, list] = {u: [] for u in users}
    for sub in subscriptions:
        if sub.target.key in keys and sub.user in relevant:
            relevant[sub.user].append(sub)
    return {u: policy.decide(u, spec, relevant[u], now, lineage_enforced) for u in users}


def decide_spec(
    db: Session,
    user_names: list[str],
    spec: policy.SpaceSpec,
    now: datetime | None = None,
    lineage_enforced: bool = True,
) -> dict[str, policy.Decision]:
    """The access decision for each of ``user_names`` in the space ``spec`` describes
    (one query: their subscriptions to what the space requires)."""
    now = now or utcnow()
    subs = subscriptions_to(db, list(user_names), required_keys([spec], lineage_enforced))
    return decide_all(spec, subs, user_names, now, lineage_enforced)


def decide(
    db: Session,
    user_names: list[str],
    space: orm.Space,
    now: datetime | None = None,
    lineage_enforced: bool = True,
) -> dict[str, policy.Decision]:
    """The access decision for each of ``user_names`` in ``space``, from the store."""
    return decide_spec(db, user_names, space_spec(db, space), now, lineage_enforced)


# ---------------------------------------------------------------------------
# the space a session gets


def load_space(db: Session, space_id: int | None, with_product_assets: bool = False) -> orm.Space | None:
    """The space with everything the access decision reads of it (and, with
    ``with_product_assets``, the assets of its products, which a session gets), in a
    fixed number of queries; None when it does not exist."""
    if space_id is None:
        return None
    query = space_query().where(orm.Space.id == space_id)
    if with_product_assets:
        query = query.options(
            selectinload(orm.Space.products)
            .selectinload(orm.SpaceProduct.product)
            .selectinload(orm.Product.assets)
        )
    return db.scalar(query)


def session_assets(space: orm.Space) -> list[orm.Asset]:
    """The assets a session of ``space`` gets: every asset of each product of the
    space, then each asset listed on its own, without duplicates."""
    seen: dict[int, orm.Asset] = {}
    for sp in space.products:
        for asset in sp.product.assets:
            seen.setdefault(asset.id, asset)
    for sa in space.assets:
        seen.setdefault(sa.asset.id, sa.asset)
    return list(seen.values())


# ---------------------------------------------------------------------------
# the activation record


class ActivationState(str, Enum):
    """The last known state of a user's session of a space, as recorded (the Spaces
    app shows it beside the hub's own server state)."""

    starting = "starting"
    active = "active"
    suspended = "suspended"
    failed = "failed"


#: the states of a session that runs or is about to
RUNNING = (ActivationState.starting.value, ActivationState.active.value)


def record_activation(
    db: Session,
    space_id: int,
    user: str,
    state: ActivationState,
    mode: str | None = None,
    reason: str = "",
    keep_reason: bool = False,
) -> None:
    """Write ``user``'s activation state of a space (one row per space and user).
    ``keep_reason`` keeps the reason already recorded (why the service stopped it)."""
    user_id = db.scalar(select(orm.User.id).where(orm.User.name == user))
    if user_id is None:
        return
    row = db.scalar(
        select(orm.Activation).where(orm.Activation.space_id == space_id, orm.Activation.user_id == user_id)
    )
    if row is None:
        row = orm.Activation(space_id=space_id, user_id=user_id, state=ActivationState(state).value)
        db.add(row)
    row.state = ActivationState(state).value
    if mode is not None:
        row.mode = mode
    if not keep_reason:
        row.reason = reason
    row.updated_at = utcnow()


def suspend_activation(db: Session, space_id: int, user: str, reason: str, recorded: bool = False) -> None:
    """Record ``user``'s session of a space suspended with ``reason`` when it is
    recorded running (and, with ``recorded``, also when its suspension is recorded
    already without that reason)."""
    states = (*RUNNING, ActivationState.suspended.value) if recorded else RUNNING
    db.execute(
        update(orm.Activation)
        .where(
            orm.Activation.space_id == space_id,
            orm.Activation.user_id == select(orm.User.id).where(orm.User.name == user).scalar_subquery(),
            orm.Activation.state.in_(states),
        )
        .values(state=ActivationState.suspended.value, reason=reason, updated_at=utcnow())
    )


def activation(db: Session, space_id: int, user: str) -> dict | None:
    """``user``'s activation record of a space (state, mode, reason, updated_at), or None."""
    row = db.execute(
        select(orm.Activation.state, orm.Activation.mode, orm.Activation.reason, orm.Activation.updated_at)
        .join(orm.User, orm.User.id == orm.Activation.user_id)
        .where(orm.Activation.space_id == space_id, orm.User.name == user)
    ).first()
    if row is None:
        return None
    return {"state": row[0], "mode": row[1], "reason": row[2], "updated_at": row[3]}


def running_activations(db: Session, space_id: int | None = None) -> dict[int, list[tuple[str, str | None]]]:
    """The sessions recorded running: space id -> [(user name, mode)] (of one space
    when ``space_id`` is given)."""
    query = (
        select(orm.Activation.space_id, orm.User.name, orm.Activation.mode)
        .join(orm.User, orm.User.id == orm.Activation.user_id)
        .where(orm.Activation.state.in_(RUNNING))
    )
    if space_id is not None:
        query = query.where(orm.Activation.space_id == space_id)
    running: dict[int, list[tuple[str, str | None]]] = {}
    for sid, user, mode in db.execute(query):
        running.setdefault(sid, []).append((user, mode))
    return running


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
