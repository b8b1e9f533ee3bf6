"""Publishing a table of the Publish database as a derived asset, on a real
PostgreSQL: all of snapshot, catalog entry and lineage, or none of them."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import func, inspect, select

from jupyterhub_spaces import orm
from jupyterhub_spaces.databases import copy as copy_mod
from jupyterhub_spaces.databases import publish as publish_mod
from jupyterhub_spaces.databases.lineage import lineage
from jupyterhub_spaces.databases.publish import PublishError, publish
from jupyterhub_spaces.store import make_engine, space_query

PREFIX = "spaces_derived_"


def write_result(world, user="alice"):
    creds = world.activate(world.retail, user)
    with world.connect(creds, "publish") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS forecast (store text, footfall int)")
        conn.execute("INSERT INTO forecast VALUES ('leeds', 10), ('york', 12)")
    return creds


def do_publish(world, db, user="alice", table="forecast", name="Footfall forecast"):
    space = db.scalar(space_query().where(orm.Space.id == world.retail))
    member = db.scalar(select(orm.User).where(orm.User.name == user))
    role = next((c.role for c in space.collaborators if c.user_id == member.id), None)
    return publish(db, world.dbs, space, member, role, table, name, "weekly", PREFIX)


def catalog_counts(world):
    """Derived assets, lineage edges and lineage closure rows in the catalog."""
    with world.store.transaction() as db:
        return (
            db.scalar(select(func.count()).select_from(orm.Asset).where(orm.Asset.derived)),
            db.scalar(select(func.count()).select_from(orm.LineageEdge)),
            db.scalar(select(func.count()).select_from(orm.LineageClosure)),
        )


def snapshots(world):
    engine = make_engine(world.data_url)
    try:
        with engine.connect() as conn:
            return [t for t in inspect(conn).get_table_names(schema="sources") if t.startswith(PREFIX)]
    finally:
        engine.dispose()


@pytest.fixture
def with_asset(world):
    """The retail space also names the weather asset, so lineage has both kinds."""
    with world.store.transaction() as db:
        db.add(orm.SpaceAsset(space_id=world.retail, asset_id=world.ids["asset:weather"]))
    return world


def test_publish_writes_snapshot_catalog_entry_and_lineage(with_asset):
    world = with_asset
    write_result(world)
    with world.store.transaction() as db:
        asset = do_publish(world, db)
        asset_id = asset.id
    with world.store.transaction() as db:
        asset = db.get(orm.Asset, asset_id)
        assert (asset.derived, asset.source_space_id, asset.kind, asset.created_by) == (
            True, world.retail, "table", "alice")
        sources = {
            (e.source_product_id, e.source_asset_id)
            for e in db.scalars(select(orm.LineageEdge).where(orm.LineageEdge.asset_id == asset_id))
        }
        assert sources == {(world.ids["product:retail"], None), (None, world.ids["asset:weather"])}
        closure = {
            (c.source_product_id, c.source_asset_id, c.leaf)
            for c in db.scalars(select(orm.LineageClosure).where(orm.LineageClosure.asset_id == asset_id))
        }
        assert closure == {(world.ids["product:retail"], None, True), (None, world.ids["asset:weather"], True)}
        graph = lineage(db, asset_id)
        assert {n["name"] for n in graph["nodes"] if n["relation"] == "upstream"} == {"retail", "weather"}
        events = db.scalars(select(orm.AuditEvent).where(orm.AuditEvent.action == "asset.publish")).all()
        assert [e.detail["rows"] for e in events] == [2]
    # the snapshot is a static table in the source database, under the asset's location
    assert snapshots(world) == [asset.location]
    with psycopg.connect(world.data_url.replace("+psycopg", ""), autocommit=True) as conn:
        rows = conn.execute(f'SELECT store, footfall FROM sources."{asset.location}" ORDER BY store')
        assert rows.fetchall() == [("leeds", 10), ("york", 12)]


def test_published_asset_is_usable_in_another_space(world):
    write_result(world)
    with world.store.transaction() as db:
        asset_id = do_publish(world, db).id
        db.add(orm.SpaceAsset(space_id=world.weather, asset_id=asset_id))
    creds = world.activate(world.weather, "eve")
    with world.connect(creds, "asset") as conn:
        names = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")]
        snapshot = next(n for n in names if n.startswith(PREFIX))
        assert conn.execute(f'SELECT count(*) FROM "{snapshot}"').fetchone() == (2,)


@pytest.mark.parametrize("user, allowed", [("pat", True), ("bob", False), ("carol", False)])
def test_only_owners_and_publishers_publish(world, user, allowed):
    write_result(world)
    with world.store.transaction() as db:
        if allowed:
            do_publish(world, db, user=user)
        else:
            with pytest.raises(PublishError, match="only its owners and publishers") as e:
                do_publish(world, db, user=user)
            assert e.value.status == 403
    assert catalog_counts(world) == ((1, 1, 1) if allowed else (0, 0, 0))


def test_unknown_table_is_refused_and_writes_nothing(world):
    write_result(world)
    with world.store.transaction() as db:
        with pytest.raises(PublishError, match="no table 'nope'") as e:
            do_publish(world, db, table="nope")
        assert e.value.status == 404
    assert catalog_counts(world) == (0, 0, 0)
    assert snapshots(world) == []


def test_failure_while_copying_leaves_nothing(world, monkeypatch):
    write_result(world)
    real = copy_mod.copy_table

    def copy_then_fail(*args, **kwargs):
        real(*args, **kwargs)  # the table is there when it fails
        raise OSError("connection lost")

    monkeypatch.setattr(copy_mod, "copy_table", copy_then_fail)
    with pytest.raises(OSError):
        with world.store.transaction() as db:
            do_publish(world, db)
    assert catalog_counts(world) == (0, 0, 0)
    assert snapshots(world) == []


def test_failure_after_the_snapshot_leaves_nothing(world, monkeypatch):
    write_result(world)

    def broken_audit(*args, **kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(publish_mod, "audit", broken_audit)
    with pytest.raises(RuntimeError):
        with world.store.transaction() as db:
            do_publish(world, db)
    assert catalog_counts(world) == (0, 0, 0)
    assert snapshots(world) == []


def test_catalog_transaction_failing_after_publish_drops_the_snapshot(world):
    write_result(world)
    with pytest.raises(ZeroDivisionError):
        with world.store.transaction() as db:
            do_publish(world, db)
            assert len(snapshots(world)) == 1  # written, waiting for the commit
            1 / 0  # the request fails later: the whole publish goes
    assert catalog_counts(world) == (0, 0, 0)
    assert snapshots(world) == []


def test_swept_snapshots_are_only_stale_orphans(world):
    write_result(world)
    with world.store.transaction() as db:
        kept = do_publish(world, db).location
    engine = make_engine(world.data_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE TABLE sources."{PREFIX}999_20200101000000_abcd" (a int)')
        conn.exec_driver_sql(f'CREATE TABLE sources."{PREFIX}998_29990101000000_abcd" (a int)')
    engine.dispose()
    from datetime import timedelta

    with world.store.transaction() as db:
        dropped = publish_mod.sweep_snapshots(
            db, world.dbs.source_db_url, PREFIX, timedelta(hours=1)
        )
    assert dropped == [f"{PREFIX}999_20200101000000_abcd"]
    assert sorted(snapshots(world)) == sorted([kept, f"{PREFIX}998_29990101000000_abcd"])
