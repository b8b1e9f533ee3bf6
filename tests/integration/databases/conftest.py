"""Fixtures for the space databases against a real PostgreSQL server.

Every test gets its own uniquely named databases and its own role prefix (roles are
cluster-wide and other test runs share the server); both are dropped afterwards.
Tests skip when no server answers at ``$SPACES_TEST_POSTGRES_URL``.

Fixtures
--------
``pg_url`` (function)
    ``pg_url()`` creates one more fresh database and returns its SQLAlchemy URL.
``closed_databases_restored`` (function)
    Gives PUBLIC back CONNECT on the server's ``postgres`` and ``template1`` after the
    test when it had it before (the backend takes it; the server is shared).
``world`` (function)
    A :class:`World`: a catalog (``world.store``) on its own database, a data database
    (``world.data_url``) whose ``sources`` schema holds the source tables ``sales``,
    ``weather`` and ``salaries``, and a :class:`~jupyterhub_spaces.databases.postgres.PostgresDatabases`
    (``world.dbs``) keeping the space schemas in that data database. The catalog has
    products ``retail`` (table asset ``sales``, files asset ``stores``) and
    ``weather`` (table asset ``weather``); ``salaries`` is a source table no asset
    names. Space ``retail`` (id ``world.retail``): alice owner, bob editor, carol
    viewer, pat publisher; space ``weather`` (``world.weather``): eve owner. Every
    user holds full subscriptions to both products. ``world.activate(space_id, user)``
    prepares the space and issues credentials as the catalog says (and closes the
    catalog's database, ``postgres`` and ``template1`` to member logins: what was open
    before is given back after the test);
    ``world.connect(creds, kind)`` opens a psycopg connection (autocommit) with them.
"""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field

import psycopg
import pytest
from sqlalchemy import select

from spaces_hub import postgres_available, postgres_database
from db_roles import drop_roles
from spaces_hub import _pg_admin_dsn

from jupyterhub_spaces import databases, orm
from jupyterhub_spaces.databases import SpaceDatabases
from jupyterhub_spaces.databases.postgres import PostgresDatabases
from jupyterhub_spaces.store import Store, space_query

SOURCE_SQL = """
CREATE SCHEMA sources;
CREATE TABLE sources.sales (day date, store text, revenue numeric(10, 2));
INSERT INTO sources.sales VALUES ('2024-03-01', 'leeds', 1200.50), ('2024-03-02', 'york', 980.00);
CREATE TABLE sources.weather (day date, city text, temp_max_c real);
INSERT INTO sources.weather VALUES ('2024-03-01', 'leeds', 9.5);
CREATE TABLE sources.salaries (name text, salary int);
INSERT INTO sources.salaries VALUES ('alice', 1);
"""


@pytest.fixture
def pg_url():
    if not postgres_available():
        pytest.skip("no PostgreSQL server answers at $SPACES_TEST_POSTGRES_URL")
    with ExitStack() as stack:
        yield lambda: stack.enter_context(postgres_database("spaces_dbtest"))


@dataclass
class World:
    store: Store
    data_url: str
    dbs: PostgresDatabases
    ids: dict = field(default_factory=dict)

    @property
    def retail(self) -> int:
        return self.ids["space:retail"]

    @property
    def weather(self) -> int:
        return self.ids["space:weather"]

    def space_data(self, space_id: int) -> databases.SpaceData:
        with self.store.transaction() as db:
            space = db.scalar(space_query().where(orm.Space.id == space_id))
            return databases.space_data(db, space)

    def role_of(self, space_id: int, user: str) -> str:
        with self.store.transaction() as db:
            return db.scalar(
                select(orm.Collaborator.role)
                .join(orm.User, orm.User.id == orm.Collaborator.user_id)
                .where(orm.Collaborator.space_id == space_id, orm.User.name == user)
            )

    def activate(self, space_id: int, user: str) -> databases.Credentials:
        data = self.space_data(space_id)
        self.dbs.prepare(data)
        return self.dbs.issue(data, user, self.role_of(space_id, user))

    @staticmethod
    def connect(creds: databases.Credentials, kind: str) -> psycopg.Connection:
        return psycopg.connect(creds.connections[kind].url, autocommit=True, connect_timeout=5)


def _seed(store: Store) -> dict:
    ids = {}
    with store.transaction() as db:
        org = orm.Organization(name="northwind")
        db.add(org)
        db.flush()
        users = {n: orm.User(name=n, org_id=org.id) for n in ("alice", "bob", "carol", "pat", "eve")}
        db.add_all(users.values())
        retail = orm.Product(name="retail", owner_org_id=org.id)
        weather = orm.Product(name="weather", owner_org_id=org.id)
        db.add_all([retail, weather])
        db.flush()
        assets = {
            "sales": orm.Asset(name="sales", kind="table", location="sales", product_id=retail.id, owner_org_id=org.id),
            "stores": orm.Asset(name="stores", kind="files", location="retail/stores", product_id=retail.id, owner_org_id=org.id),
            "weather": orm.Asset(name="weather", kind="table", location="weather", product_id=weather.id, owner_org_id=org.id),
        }
        db.add_all(assets.values())
        db.flush()
        for u in users.values():
            for p in (retail, weather):
                db.add(orm.Subscription(user_id=u.id, product_id=p.id, level="full", status="active"))
        for slug, product, members in (
            ("retail", retail, (("alice", "owner"), ("bob", "editor"), ("carol", "viewer"), ("pat", "publisher"))),
            ("weather", weather, (("eve", "owner"),)),
        ):
            space = orm.Space(slug=slug, display_name=slug.title(), owner_id=users[members[0][0]].id,
                              tools=["jupyterlab"], profile="small")
            space.products = [orm.SpaceProduct(product_id=product.id)]
            space.collaborators = [orm.Collaborator(user_id=users[n].id, role=r) for n, r in members]
            db.add(space)
            db.flush()
            ids[f"space:{slug}"] = space.id
        ids.update({f"user:{n}": u.id for n, u in users.items()})
        ids.update({f"product:{p.name}": p.id for p in (retail, weather)})
        ids.update({f"asset:{n}": a.id for n, a in assets.items()})
    return ids


def _open_to_public(names) -> list[str]:
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        return [n for (n,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s) "
            "AND has_database_privilege('public', oid, 'CONNECT')", (list(names),))]


@pytest.fixture
def closed_databases_restored():
    """The backend takes CONNECT on the server's ``postgres`` and ``template1`` from
    PUBLIC (``SpaceDatabases.closed_databases``); the server is shared with other
    test runs, so give back what was open before the test."""
    names = list(SpaceDatabases().closed_databases)
    was_open = _open_to_public(names)
    yield
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        for name in was_open:
            conn.execute(f'GRANT CONNECT ON DATABASE "{name}" TO PUBLIC')


@pytest.fixture
def world(pg_url, closed_databases_restored):
    catalog_url = pg_url()
    data_url = pg_url()
    with psycopg.connect(data_url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(SOURCE_SQL)
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    config = SpaceDatabases(admin_url=data_url, role_prefix=prefix)
    store = Store(catalog_url)
    dbs = PostgresDatabases(config, data_url + "?options=-csearch_path%3Dsources", catalog_url)
    w = World(store, data_url, dbs, _seed(store))
    try:
        yield w
    finally:
        dbs.dispose()
        store.dispose()
        # roles go once pg_url has dropped the databases they hold grants in
        _cleanup.append(prefix)


_cleanup: list[str] = []


@pytest.fixture(autouse=True)
def _drop_test_roles():
    # autouse: set up first, torn down last, after every database of the test is gone
    yield
    while _cleanup:
        drop_roles(_cleanup.pop())
