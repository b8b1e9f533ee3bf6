"""Data carries its origin, end to end through the service API, with the catalog on
SQLite and on PostgreSQL (the space databases on SQLite).

Observation: a member copied rows of product B into the Publish database while B was
in the space, removed B, then published; the derived asset's lineage named only A and
a user with no subscription to B got a workbench over B's rows. And an editor whose
subscription to A was ``spaces``-level removed A from the space and became Workbench
with A's rows still in its databases. Both must no longer happen.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import delete, select

from spaces_hub import API, SpacesHub, api_json, clear_catalog

from jupyterhub_spaces import demo, orm
from jupyterhub_spaces.databases import SpaceDatabases, space_data
from jupyterhub_spaces.databases.sqlite import SQLiteDatabases
from jupyterhub_spaces.settings import SpacesSettings
from jupyterhub_spaces.store import space_query

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def taint_hub(store, catalog_db_url, tmp_path_factory):
    """A hub whose service keeps the space databases where this test can reach them,
    with the demo catalog; ``taint_hub.dbs`` is the same SQLite backend."""
    workdir = tmp_path_factory.mktemp("taint")
    root = str(workdir / "dbs")
    h = SpacesHub(workdir, catalog_db_url, spaces_config=f"c.SpaceDatabases.sqlite_root = {root!r}\n")
    settings = SpacesSettings(db_url=catalog_db_url, data_root=str(workdir / "data"),
                              source_db_url=f"sqlite:///{workdir / 'sources.sqlite'}")
    clear_catalog(store)
    demo.seed(store, settings)
    h.dbs = SQLiteDatabases(SpaceDatabases(sqlite_root=root), settings.source_db_url)
    h.start()
    yield h
    h.stop()
    h.dbs.dispose()


def subscribe(store, levels: dict):
    """Replace the subscriptions of the users named in ``levels`` ({user: {product: level}})."""
    with store.transaction() as db:
        products = {p.name: p.id for p in db.scalars(select(orm.Product))}
        for name, wanted in levels.items():
            user = db.scalar(select(orm.User).where(orm.User.name == name))
            db.execute(delete(orm.Subscription).where(orm.Subscription.user_id == user.id))
            for product, level in wanted.items():
                db.add(orm.Subscription(user_id=user.id, product_id=products[product], level=level,
                                        status="active", granted_by="test"))
        return products


def copy_rows_into_publish(h, store, space_id, source_table, table):
    """What code in alice's session does: read B's rows from the Asset database and
    write them into a table of the Publish database, with the URLs it was given."""
    with store.transaction() as db:
        data = space_data(db, db.scalar(space_query().where(orm.Space.id == space_id)))
    h.dbs.prepare(data)
    creds = h.dbs.issue(data, "alice", "owner")
    asset = sa.create_engine(creds.connections["asset"].sqlalchemy_url)
    publish = sa.create_engine(creds.connections["publish"].sqlalchemy_url)
    with asset.connect() as src, publish.begin() as dst:
        rows = src.exec_driver_sql(f"SELECT city, precipitation_mm FROM {source_table}").all()
        dst.exec_driver_sql(f"CREATE TABLE {table} (city TEXT, precipitation_mm REAL)")
        dst.exec_driver_sql(f"INSERT INTO {table} VALUES (?, ?)", [tuple(r) for r in rows])
    asset.dispose()
    publish.dispose()
    return len(rows)


def access(client, space_id):
    r = client.get(f"{API}spaces/{space_id}/access")
    assert r.status_code == 200, r.text
    return r.json()


def test_removing_a_product_keeps_its_origin_in_lineage_and_access(taint_hub, store):
    h = taint_hub
    ids = subscribe(store, {
        "alice": {"retail-sales": "full", "weather": "full"},
        "bob": {"retail-sales": "spaces", "weather": "full"},
        "dave": {"retail-sales": "full"},
    })
    A, B = ids["retail-sales"], ids["weather"]
    alice, bob, dave = (h.token_session(u) for u in ("alice", "bob", "dave"))

    r = alice.post(f"{API}spaces", json={"display_name": "Rain and sales", "products": [A, B]})
    space = api_json(r)
    assert r.status_code == 201, space
    sid = space["id"]
    r = alice.post(f"{API}spaces/{sid}/collaborators", json={"user": "bob", "role": "editor"})
    assert r.status_code == 201, r.text

    # observation 2: B's rows go into the Publish database while B is in the space...
    assert copy_rows_into_publish(h, store, sid, "weather_daily", "rain") > 0
    # ...B leaves the space...
    r = alice.patch(f"{API}spaces/{sid}", json={"products": [A]})
    assert r.status_code == 200, r.text
    assert [p["id"] for p in r.json()["products"]] == [A]
    # ...and the published table still names B as a source
    r = alice.post(f"{API}spaces/{sid}/publish", json={"table": "rain", "name": "Rain by city"})
    published = api_json(r)
    assert r.status_code == 201, published
    upstream = {n["name"] for n in published["lineage"]["nodes"] if n["relation"] == "upstream"}
    assert upstream == {"retail-sales", "weather"}
    graph = api_json(dave.get(f"{API}assets/{published['id']}/lineage"))
    assert {n["name"] for n in graph["nodes"] if n["relation"] == "upstream"} == upstream

    # a view is not data: refused with a JSON answer that says what to do, nothing written
    publish_file = h.dbs.path(sid, "publish")
    with sa.create_engine(f"sqlite:///{publish_file}").begin() as conn:
        conn.exec_driver_sql("CREATE VIEW wet AS SELECT * FROM rain WHERE precipitation_mm > 0")
    r = alice.post(f"{API}spaces/{sid}/publish", json={"table": "wet", "name": "Wet days"})
    refused = api_json(r)
    assert r.status_code == 422, refused
    assert "is a view" in refused["message"] and "CREATE TABLE wet_data AS SELECT" in refused["message"]
    assert "table" in refused["fields"]

    # dave has no subscription to B: a space of his own with the derived asset is locked
    r = dave.post(f"{API}spaces", json={"display_name": "Reuse", "assets": [published["id"]]})
    assert r.status_code == 201, r.text
    reuse = r.json()["id"]
    mine = access(dave, reuse)
    assert mine["mode"] == "locked", mine
    assert [(m["kind"], m["name"]) for m in mine["missing"]] == [("product", "weather")]
    # and his listing says so from the first request on
    listed = {s["id"]: s["access"]["mode"] for s in api_json(dave.get(f"{API}spaces?limit=100"))["items"]}
    assert listed[reuse] == "locked", listed

    # observation 3: bob's A is spaces-level; removing A does not make him a workbench
    assert access(bob, sid)["mode"] == "sandbox"
    r = bob.patch(f"{API}spaces/{sid}", json={"products": []})
    assert r.status_code == 200, r.text
    assert r.json()["access"]["mode"] == "sandbox", r.json()["access"]
    with store.transaction() as db:
        event = db.scalars(select(orm.AuditEvent).where(orm.AuditEvent.action == "space.update",
                                                        orm.AuditEvent.actor == "bob")).all()[-1]
        assert event.detail["changed"]["remains_until_purge"] == [f"product:{A}"]
    after = access(bob, sid)
    assert after["mode"] == "sandbox"
    assert "data from product 'retail-sales' remains in this space's databases" in after["reason"]
    # and someone without A stays locked out, told why
    subscribe(store, {"carol": {"weather": "full"}})
    r = alice.post(f"{API}spaces/{sid}/collaborators", json={"user": "carol", "role": "viewer"})
    assert r.status_code == 201, r.text
    carol = access(h.token_session("carol"), sid)
    assert carol["mode"] == "locked"
    assert "data from product 'retail-sales' remains" in carol["missing"][0]["message"]
