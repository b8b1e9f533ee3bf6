"""The demo catalog of the embedded default: organizations, users, products with small
real datasets, subscriptions and spaces that show each access outcome.

=========  ===========  ==============================================================
user       organization  what the rules give them
=========  ===========  ==============================================================
alice      northwind    full subscriptions to everything: *workbench* in her spaces
bob        northwind    ``spaces``-level on retail-sales: *sandbox* in Retail forecasting
carol      northwind    no subscription to weather: Retail forecasting is *locked*
admin      northwind    full subscriptions; holds the spaces admin scope in the demo hub
dave       contoso      full on weather; cannot see northwind's users (nor they his)
=========  ===========  ==============================================================

:func:`seed` is idempotent: every row is looked up by its natural key (names, slugs)
and only created when missing, source tables are only filled when empty and files only
copied when absent, so running it again changes nothing.

The demo also holds one **Task** in alice's *Retail forecasting*: a small script saved
as a Code Asset, scheduled every morning. So that the space shows a finished run with
its log from the start, the spaces service starts that task's first run as soon as
Airflow has loaded it (:func:`first_runs`), once.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import date
from importlib import resources

from sqlalchemy import Column, Date, Float, Integer, MetaData, String, Table, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from . import orm
from .store import Store, make_engine

log = logging.getLogger(__name__)

#: marks a catalog that was seeded once (see :func:`seed_once`)
SEED_ACTION = "demo.seed"
#: marks a demo task whose first run was started (see :func:`first_runs`)
FIRST_RUN_ACTION = "demo.first_run"

ORGANIZATIONS = {
    "northwind": "Northwind Retail",
    "contoso": "Contoso Weather Services",
}

#: name -> (organization, display name)
USERS = {
    "alice": ("northwind", "Alice Moreau"),
    "bob": ("northwind", "Bob Okafor"),
    "carol": ("northwind", "Carol Lindqvist"),
    "admin": ("northwind", "Spaces administrator"),
    "dave": ("contoso", "Dave Kowalski"),
}

#: demo users who get the spaces admin scope in the embedded hub
ADMIN_USERS = ("admin",)

_TYPES = {"date": Date, "int": Integer, "float": Float, "str": String(100)}
_PARSE = {"date": date.fromisoformat, "int": int, "float": float, "str": str}


@dataclass(frozen=True)
class AssetSeed:
    """One demo asset. A ``table`` asset loads ``source`` into the table named
    ``location`` in the source database with ``columns`` (name, type); a ``files``
    asset copies ``source`` into ``<data_root>/<location>/``."""

    name: str
    kind: str
    location: str
    source: str
    description: str
    columns: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ProductSeed:
    name: str
    owner_org: str
    description: str
    assets: tuple[AssetSeed, ...] = field(default=())


PRODUCTS = (
    ProductSeed(
        "retail-sales",
        "northwind",
        "Daily trading figures of Northwind's three stores, March to May 2024.",
        (
            AssetSeed(
                "daily-sales",
                "table",
                "retail_daily_sales",
                "daily_sales.csv",
                "Footfall, transactions, units and revenue per store and day.",
                (
                    ("date", "date"),
                    ("store_id", "str"),
                    ("footfall", "int"),
                    ("transactions", "int"),
                    ("units_sold", "int"),
                    ("revenue_gbp", "float"),
                ),
            ),
            AssetSeed(
                "stores",
                "files",
                "retail-sales/stores",
                "stores.csv",
                "The store register: city, opening date and floor area.",
            ),
        ),
    ),
    ProductSeed(
        "weather",
        "contoso",
        "Observed daily weather for the cities Northwind trades in.",
        (
            AssetSeed(
                "daily-weather",
                "table",
                "weather_daily",
                "daily_weather.csv",
                "Temperature range, precipitation and sunshine per city and day.",
                (
                    ("date", "date"),
                    ("city", "str"),
                    ("temp_max_c", "float"),
                    ("temp_min_c", "float"),
                    ("precipitation_mm", "float"),
                    ("sunshine_h", "float"),
                ),
            ),
        ),
    ),
)

#: (user, product, level): every demo subscription is to a whole product and active
SUBSCRIPTIONS = (
    ("alice", "retail-sales", "full"),
    ("alice", "weather", "full"),
    ("bob", "retail-sales", "spaces"),
    ("bob", "weather", "full"),
    ("carol", "retail-sales", "full"),
    ("admin", "retail-sales", "full"),
    ("admin", "weather", "full"),
    ("dave", "weather", "full"),
)


@dataclass(frozen=True)
class SpaceSeed:
    slug: str
    display_name: str
    owner: str
    description: str
    products: tuple[str, ...] = ()
    #: (product, asset) pairs
    assets: tuple[tuple[str, str], ...] = ()
    tools: tuple[str, ...] = ("jupyterlab",)
    collaborators: tuple[tuple[str, str], ...] = ()


SPACES = (
    SpaceSeed(
        "retail-forecasting",
        "Retail forecasting",
        "alice",
        "Does the weather move footfall? Sales joined with daily weather per city.",
        products=("retail-sales", "weather"),
        tools=("jupyterlab", "sqllab"),
        collaborators=(("bob", "editor"), ("carol", "viewer")),
    ),
    SpaceSeed(
        "store-footprint",
        "Store footprint",
        "alice",
        "Floor area against opening date of the store estate.",
        assets=(("retail-sales", "stores"),),
    ),
    SpaceSeed(
        "weather-trends",
        "Weather trends",
        "dave",
        "Spring warming across the observed cities.",
        products=("weather",),
        tools=("jupyterlab", "superset"),
    ),
)


@dataclass(frozen=True)
class TaskSeed:
    """A demo Task: ``files`` saved as the Code Asset ``code_asset`` of the space
    ``space`` (owned by ``owner``), run as its owner on ``schedule``."""

    space: str
    owner: str
    name: str
    code_asset: str
    entry: str
    files: dict
    schedule: str
    timezone: str
    retries: int = 1
    timeout_seconds: int = 600
    parameters: dict = field(default_factory=dict)
    message: str = ""


SALES_SUMMARY = """\
\"\"\"Morning summary of the space's sales data: what the Asset database holds.

Runs as a Task of the space (as its owner, in the session sandbox): the space's
database URLs are in the environment, the parameters in $SPACES_TASK_PARAMETERS.
\"\"\"
import json
import os

from sqlalchemy import create_engine, inspect, text

parameters = json.loads(os.environ.get("SPACES_TASK_PARAMETERS") or "{}")
print(f"sales summary of space {os.environ.get('SPACES_SPACE')}, parameters {parameters}")
engine = create_engine(os.environ["SPACES_ASSET_DB_URL"])
with engine.connect() as conn:
    for table in sorted(inspect(conn).get_table_names()):
        rows = conn.execute(text(f'SELECT COUNT(*) FROM "{table}"')).scalar()
        print(f"  {table}: {rows} rows")
print("done")
"""

TASKS = (
    TaskSeed(
        space="retail-forecasting",
        owner="alice",
        name="Morning sales summary",
        code_asset="sales-summary",
        entry="sales_summary.py",
        files={"sales_summary.py": SALES_SUMMARY},
        schedule="0 6 * * *",
        timezone="Europe/London",
        parameters={"stores": "all"},
        message="First version: row counts of the space's tables",
    ),
)


def data_path(name: str):
    """The shipped demo file ``name`` (a traversable inside the package)."""
    return resources.files("jupyterhub_spaces.demo_data").joinpath(name)


def read_rows(asset: AssetSeed) -> list[dict]:
    """The rows of a table asset's CSV, converted to the column types."""
    parse = {name: _PARSE[kind] for name, kind in asset.columns}
    with data_path(asset.source).open(newline="") as f:
        return [{k: parse[k](v) for k, v in row.items()} for row in csv.DictReader(f)]


# ---------------------------------------------------------------------------
# data outside the catalog: source tables and files


def _ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)


def load_tables(source_db_url: str) -> list[str]:
    """Create and fill each demo table asset's source table; return those filled now.

    A table that already holds rows is left as it is.
    """
    _ensure_sqlite_dir(source_db_url)
    engine = make_engine(source_db_url)
    filled = []
    try:
        metadata = MetaData()
        for product in PRODUCTS:
            for asset in product.assets:
                if asset.kind != "table":
                    continue
                table = Table(
                    asset.location,
                    metadata,
                    *(Column(name, _TYPES[kind]) for name, kind in asset.columns),
                )
                with engine.begin() as conn:
                    table.create(conn, checkfirst=True)
                    if conn.scalar(select(func.count()).select_from(table)):
                        continue
                    conn.execute(table.insert(), read_rows(asset))
                    filled.append(asset.location)
    finally:
        engine.dispose()
    return filled


def copy_files(data_root: str) -> list[str]:
    """Copy each demo files asset under ``data_root``; return the paths written now."""
    if not data_root:
        raise ValueError(
            "SpacesSettings.data_root is not set: the demo catalog needs a directory "
            "for its files assets (set c.SpacesSettings.data_root in spaces_config.py)"
        )
    written = []
    for product in PRODUCTS:
        for asset in product.assets:
            if asset.kind != "files":
                continue
            target_dir = os.path.join(data_root, asset.location)
            target = os.path.join(target_dir, os.path.basename(asset.source))
            if os.path.exists(target):
                continue
            os.makedirs(target_dir, exist_ok=True)
            with data_path(asset.source).open("rb") as src, open(target + ".part", "wb") as dst:
                shutil.copyfileobj(src, dst)
            # readable by the session accounts that get it bound into their sandbox;
            # the state directory above is 0700, so no other account reaches it
            for path in _dirs_between(data_root, target_dir):
                os.chmod(path, 0o755)
            os.chmod(target + ".part", 0o644)
            # the rename makes a half-copied file impossible to mistake for the data
            os.replace(target + ".part", target)
            written.append(target)
    return written


def _dirs_between(root: str, leaf: str) -> list[str]:
    root, leaf = os.path.abspath(root), os.path.abspath(leaf)
    dirs = [leaf]
    while dirs[-1] != root and os.path.dirname(dirs[-1]) != dirs[-1]:
        dirs.append(os.path.dirname(dirs[-1]))
    return dirs


#: entries of the state directory that keep their own modes: sessions reach them
#: through their sandbox's binds (asset files, space databases, homes)
SHARED_STATE = ("data", "jupyterhub_spaces_databases", "spaces-home")


def private_state(var: str) -> None:
    """Make the state directory private to the hub's account: the directory 0700,
    every file in it 0600 and every directory 0700, except :data:`SHARED_STATE`
    (those keep their modes, which their owners set, and are unreachable for other
    accounts through the 0700 directory above them). Also the files of an older
    checkout that were made with looser modes."""
    os.makedirs(var, 0o700, exist_ok=True)
    os.chmod(var, 0o700)
    for root, dirs, files in os.walk(var):
        if os.path.abspath(root) == os.path.abspath(var):
            dirs[:] = [d for d in dirs if d not in SHARED_STATE]
        # a link (Airflow's logs/…/latest is one) keeps its target's mode: Linux cannot
        # change a link's own mode, and the target is tightened where it lies
        for name in dirs:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o700)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o600)


# ---------------------------------------------------------------------------
# the catalog


class _Seeder:
    """Get-or-create by natural key, counting what it had to create."""

    def __init__(self, db: Session):
        self.db = db
        self.created: dict[str, int] = {}
        #: tasks made now, whose first run the service starts (:func:`first_runs`)
        self.first_runs: list[int] = []

    def _one(self, model, **key):
        row = self.db.scalar(select(model).filter_by(**key))
        return row

    def get_or_create(self, model, key: dict, **values):
        row = self._one(model, **key)
        if row is None:
            row = model(**key, **values)
            self.db.add(row)
            self.db.flush()
            self.created[model.__tablename__] = self.created.get(model.__tablename__, 0) + 1
        return row

    def run(self, default_profile: str) -> dict[str, int]:
        db = self.db
        orgs = {
            name: self.get_or_create(orm.Organization, {"name": name}, display_name=display)
            for name, display in ORGANIZATIONS.items()
        }
        users = {
            name: self.get_or_create(
                orm.User, {"name": name}, org_id=orgs[org].id, display_name=display
            )
            for name, (org, display) in USERS.items()
        }
        products: dict[str, orm.Product] = {}
        assets: dict[tuple[str, str], orm.Asset] = {}
        for p in PRODUCTS:
            product = self.get_or_create(
                orm.Product,
                {"name": p.name},
                description=p.description,
                owner_org_id=orgs[p.owner_org].id,
            )
            products[p.name] = product
            for a in p.assets:
                assets[(p.name, a.name)] = self.get_or_create(
                    orm.Asset,
                    {"product_id": product.id, "name": a.name},
                    kind=a.kind,
                    location=a.location,
                    description=a.description,
                    owner_org_id=product.owner_org_id,
                    created_by="demo",
                )
        for user, product, level in SUBSCRIPTIONS:
            self.get_or_create(
                orm.Subscription,
                {"user_id": users[user].id, "product_id": products[product].id},
                level=level,
                status="active",
                granted_by="demo",
            )
        for s in SPACES:
            space = self._one(orm.Space, slug=s.slug, owner_id=users[s.owner].id)
            if space is not None:
                continue
            space = orm.Space(
                slug=s.slug,
                display_name=s.display_name,
                description=s.description,
                owner_id=users[s.owner].id,
                tools=list(s.tools),
                profile=default_profile,
                workers=0,
            )
            space.products = [
                orm.SpaceProduct(product_id=products[name].id, position=i)
                for i, name in enumerate(s.products)
            ]
            space.assets = [
                orm.SpaceAsset(asset_id=assets[key].id, position=i)
                for i, key in enumerate(s.assets)
            ]
            members = [(s.owner, "owner"), *s.collaborators]
            space.collaborators = [
                orm.Collaborator(user_id=users[name].id, role=role) for name, role in members
            ]
            db.add(space)
            db.flush()
            self.created["spaces"] = self.created.get("spaces", 0) + 1
            self.created["collaborators"] = (
                self.created.get("collaborators", 0) + len(members)
            )
        for t in TASKS:
            self._task(t, users, products)
        return self.created

    def _task(self, t: TaskSeed, users: dict, products: dict) -> None:
        """The Code Asset (one version) and the Task of ``t``, when missing."""
        from .tasks import codeasset

        db = self.db
        space = self._one(orm.Space, slug=t.space, owner_id=users[t.owner].id)
        if space is None or self._one(orm.Task, space_id=space.id, name=t.name) is not None:
            return
        snap = codeasset.snapshot(
            {path: text.encode() for path, text in t.files.items()}, t.entry, 1 << 20, 10
        )
        seed = next(s for s in SPACES if s.slug == t.space)
        lineage = {
            "products": [{"id": products[n].id, "name": n} for n in seed.products],
            "assets": [],
        }
        version, _ = codeasset.save(db, space, t.code_asset, snap, t.owner, t.message, lineage)
        task = orm.Task(
            space_id=space.id, name=t.name, owner_id=users[t.owner].id, version_id=version.id,
            parameters=dict(t.parameters), schedule=t.schedule, timezone=t.timezone,
            profile=space.profile, timeout_seconds=t.timeout_seconds, retries=t.retries,
            publish=[], paused=False, paused_reason="",
        )
        db.add(task)
        db.flush()
        self.created["tasks"] = self.created.get("tasks", 0) + 1
        self.first_runs.append(task.id)


def seed(store: Store, settings) -> dict[str, int]:
    """Load the demo catalog into ``store`` and its data into ``settings.source_db_url``
    and ``settings.data_root``. Returns how many rows of each table it created (empty
    when everything was there already).
    """
    copied = copy_files(settings.data_root)
    filled = load_tables(settings.source_db_url)
    with store.transaction() as db:
        seeder = _Seeder(db)
        created = seeder.run(settings.default_profile)
        if created or copied or filled:
            db.add(
                orm.AuditEvent(
                    actor="demo",
                    action=SEED_ACTION,
                    target_type="catalog",
                    detail={"created": created, "tables": filled, "files": len(copied),
                            "first_runs": seeder.first_runs},
                )
            )
    if created or copied or filled:
        log.info(
            "demo catalog: created %s, filled tables %s, copied %d file(s)",
            created,
            filled,
            len(copied),
        )
    return created


def seeded_before(store: Store) -> bool:
    """Whether :func:`seed` ran against this catalog before."""
    with store.transaction() as db:
        return (
            db.scalar(select(orm.AuditEvent.id).where(orm.AuditEvent.action == SEED_ACTION).limit(1))
            is not None
        )


def seed_once(store: Store, settings) -> bool:
    """Seed on the first start only, so demo rows a user deleted stay deleted when the
    hub restarts. Returns whether it seeded."""
    if seeded_before(store):
        return False
    seed(store, settings)
    return True


# ---------------------------------------------------------------------------
# the demo task's first run


def pending_first_runs(store: Store) -> list[int]:
    """Demo tasks whose first run was never started: made by :func:`seed`, still
    there, without any run and without a :data:`FIRST_RUN_ACTION` mark."""
    with store.transaction() as db:
        wanted: set[int] = set()
        for detail in db.scalars(select(orm.AuditEvent.detail).where(orm.AuditEvent.action == SEED_ACTION)):
            wanted.update(int(i) for i in (detail or {}).get("first_runs", []))
        if not wanted:
            return []
        started = set(db.scalars(
            select(orm.AuditEvent.target_id).where(orm.AuditEvent.action == FIRST_RUN_ACTION)
        ))
        ran = set(db.scalars(select(orm.TaskRun.task_id).where(orm.TaskRun.task_id.in_(wanted))))
        there = set(db.scalars(select(orm.Task.id).where(orm.Task.id.in_(wanted))))
        return sorted(i for i in there - ran if str(i) not in started)


async def first_runs(store: Store, engine, interval: float = 5, timeout: float = 1800) -> list[int]:
    """Start the first run of each pending demo task as soon as Airflow has loaded
    it (Airflow answers 404 or is unreachable until then), unless Airflow has already
    started one, once: each start is marked in the audit log, so a restart never
    starts another. Returns the tasks it saw started."""
    from .tasks.engine import EngineError

    pending = pending_first_runs(store)
    started: list[int] = []
    loaded: set[int] = set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending and engine.configured and loop.time() < deadline:
        for task_id in list(pending):
            try:
                # Airflow may start one itself: a new DAG whose schedule's last slot has
                # passed runs that slot at once (no catch-up beyond it). Its scheduler
                # does so within a loop of loading the DAG: trigger only when a second
                # look, an interval later, still finds no run
                if not (await engine.dag_runs(task_id, limit=1)).get("dag_runs"):
                    if task_id not in loaded:
                        loaded.add(task_id)
                        continue
                    await engine.trigger(task_id, note="first run of the demo task")
            except EngineError as e:
                log.debug("demo task %s: not started yet (%s)", task_id, e.message)
                continue
            except (OSError, KeyError, ValueError) as e:
                # Airflow's password file is written when Airflow first starts
                log.debug("demo task %s: not started yet (%s)", task_id, e)
                continue
            with store.transaction() as db:
                db.add(orm.AuditEvent(actor="demo", action=FIRST_RUN_ACTION, target_type="task",
                                      target_id=str(task_id), detail={}))
            log.info("demo task %s: its first run is under way", task_id)
            pending.remove(task_id)
            started.append(task_id)
        if pending:
            await asyncio.sleep(interval)
    return started
