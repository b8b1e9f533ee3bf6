"""A hostile member publishes from the SQLite Publish file (the embedded default): only
plain tables are published, read as data on a connection that can read and nothing
else (no ATTACH of another file, no write, no pragma that would lift that)."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from jupyterhub_spaces import orm
from jupyterhub_spaces.databases import SpaceDatabases, space_data
from jupyterhub_spaces.databases.publish import PublishError, publish
from jupyterhub_spaces.databases.sqlite import SQLiteDatabases
from jupyterhub_spaces.store import Store, space_query

PREFIX = "spaces_derived_"


@pytest.fixture
def world(tmp_path):
    """Catalog and source database on SQLite; space 'retail' (owner alice) holds
    product retail (table asset sales); the source also has payroll, which no asset
    names. ``world.publish_file`` is the space's Publish file, as the session has it."""
    source = f"sqlite:///{tmp_path}/sources.sqlite"
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE sales (store TEXT, revenue REAL)")
        conn.exec_driver_sql("INSERT INTO sales VALUES ('leeds', 1200.5)")
        conn.exec_driver_sql("CREATE TABLE payroll (name TEXT, salary INT)")
        conn.exec_driver_sql("INSERT INTO payroll VALUES ('ceo', 999999)")
    engine.dispose()
    store = Store(f"sqlite:///{tmp_path}/catalog.sqlite")
    with store.transaction() as db:
        org = orm.Organization(name="o")
        db.add(org)
        db.flush()
        alice = orm.User(name="alice", org_id=org.id)
        retail = orm.Product(name="retail", owner_org_id=org.id)
        db.add_all([alice, retail])
        db.flush()
        db.add(orm.Asset(name="sales", kind="table", location="sales", product_id=retail.id, owner_org_id=org.id))
        space = orm.Space(slug="retail", display_name="Retail", owner_id=alice.id, tools=["jupyterlab"], profile="small")
        space.products = [orm.SpaceProduct(product_id=retail.id)]
        space.collaborators = [orm.Collaborator(user_id=alice.id, role="owner")]
        db.add(space)
        db.flush()
        space_id = space.id
    dbs = SQLiteDatabases(SpaceDatabases(sqlite_root=str(tmp_path / "dbs")), source)
    with store.transaction() as db:
        dbs.prepare(space_data(db, db.scalar(space_query().where(orm.Space.id == space_id))))

    class World:
        pass

    w = World()
    w.store, w.dbs, w.space_id, w.source = store, dbs, space_id, f"{tmp_path}/sources.sqlite"
    w.publish_file = dbs.path(space_id, "publish")
    yield w
    dbs.dispose()
    store.dispose()


def member_sql(world, sql):
    conn = sqlite3.connect(world.publish_file)
    try:
        conn.executescript(sql)
        conn.commit()
    finally:
        conn.close()


def try_publish(world, table):
    with world.store.transaction() as db:
        space = db.scalar(space_query().where(orm.Space.id == world.space_id))
        alice = db.scalar(select(orm.User).where(orm.User.name == "alice"))
        return publish(db, world.dbs, space, alice, "owner", table, "Quarterly", "", PREFIX).location


def snapshot_rows(world, location):
    conn = sqlite3.connect(world.source)
    try:
        return conn.execute(f'SELECT * FROM "{location}"').fetchall()
    finally:
        conn.close()


REFUSED = {
    "view": ("CREATE TABLE mine (a INT); INSERT INTO mine VALUES (1);"
             " CREATE VIEW report AS SELECT * FROM mine", "report", "is a view"),
    "view named like a source table": (
        "CREATE TABLE mine (name TEXT, salary INT); CREATE VIEW payroll AS SELECT * FROM mine",
        "payroll", "is a view"),
    "virtual table": ("CREATE VIRTUAL TABLE notes USING fts5(body)", "notes", "is a virtual table"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_anything_but_a_plain_table_is_refused(world, case):
    sql, table, words = REFUSED[case]
    member_sql(world, sql)
    with pytest.raises(PublishError) as e:
        try_publish(world, table)
    assert e.value.status == 422
    assert words in e.value.message and "CREATE TABLE" in e.value.message


def test_a_table_named_like_a_source_table_publishes_the_members_rows(world):
    member_sql(world, "CREATE TABLE payroll (name TEXT, salary INT); INSERT INTO payroll VALUES ('mine', 4)")
    assert snapshot_rows(world, try_publish(world, "payroll")) == [("mine", 4)]


def test_a_table_with_a_trigger_publishes_its_rows_and_runs_nothing(world):
    member_sql(world, "CREATE TABLE t (a INT); CREATE TABLE log (x INT); INSERT INTO t VALUES (7);"
               " CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (1); END")
    assert snapshot_rows(world, try_publish(world, "t")) == [(7,)]
    conn = sqlite3.connect(world.publish_file)
    assert conn.execute("SELECT count(*) FROM log").fetchone() == (0,)
    conn.close()


@pytest.mark.parametrize(
    "statement",
    [
        "ATTACH DATABASE '{source}' AS src",
        "INSERT INTO t VALUES (8)",
        "CREATE TABLE other (a INT)",
        "PRAGMA query_only = OFF",
        "PRAGMA writable_schema = ON",
        "PRAGMA trusted_schema = ON",
        "SELECT load_extension('nothing')",
    ],
)
def test_the_reader_reads_and_does_nothing_else(world, statement):
    member_sql(world, "CREATE TABLE t (a INT); INSERT INTO t VALUES (7)")
    with world.dbs.publish_reader(world.space_id, "owner") as (conn, _):
        assert conn.exec_driver_sql("SELECT a FROM t").all() == [(7,)]
        with pytest.raises(sa.exc.DatabaseError, match="not authorized|readonly|read-only"):
            conn.exec_driver_sql(statement.format(source=world.source))
    conn = sqlite3.connect(world.publish_file)
    assert conn.execute("SELECT a FROM t").fetchall() == [(7,)]
    conn.close()


def test_the_very_next_access_check_sees_what_a_publish_was_made_from(world):
    """The closure is written with the publish: a space holding the new asset is locked
    for a user without the source product from the first check on, with nothing to
    refresh, and opens once they subscribe."""
    from jupyterhub_spaces.service.queries import space_views
    from jupyterhub_spaces.store import decide_all, required_keys, subscriptions_to
    from jupyterhub_spaces.store import space_spec
    from jupyterhub_spaces.utils import utcnow

    member_sql(world, "CREATE TABLE quarterly (store TEXT, revenue REAL); INSERT INTO quarterly VALUES ('york', 3)")
    try_publish(world, "quarterly")
    with world.store.transaction() as db:
        asset = db.scalar(select(orm.Asset).where(orm.Asset.derived))
        dan = orm.User(name="dan")
        db.add(dan)
        db.flush()
        reuse = orm.Space(slug="reuse", display_name="Reuse", owner_id=dan.id, tools=["jupyterlab"], profile="small")
        reuse.assets = [orm.SpaceAsset(asset_id=asset.id)]
        reuse.collaborators = [orm.Collaborator(user_id=dan.id, role="owner")]
        db.add(reuse)
        db.flush()
        ids = {"space": reuse.id, "dan": dan.id, "retail": db.scalar(select(orm.Product.id))}

    def check():
        # as GET /api/v1/spaces/{id}/access and the listing decide
        with world.store.transaction() as db:
            spec = space_spec(db, space_views(db, [ids["space"]])[ids["space"]])
            subs = subscriptions_to(db, ["dan"], required_keys([spec], True))
            d = decide_all(spec, subs, ["dan"], utcnow(), True)["dan"]
            return d.mode.value, [(m.target.kind, m.target.name) for m in d.missing]

    assert check() == ("locked", [("product", "retail")])
    with world.store.transaction() as db:
        db.add(orm.Subscription(user_id=ids["dan"], product_id=ids["retail"], level="full", status="active"))
    assert check() == ("workbench", [])
