"""The catalog keeps each space's taint: the database adds to it whenever a space
gains data, nothing removes it but a purge, revision 0002 backfills it, and both
ways of loading a space hand it to the policy (SQLite catalog)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import delete, select

from jupyterhub_spaces import orm
from jupyterhub_spaces.databases import SpaceData, SpaceDatabases
from jupyterhub_spaces.databases.base import PurgeNotConfirmed
from jupyterhub_spaces.databases.purge import purge
from jupyterhub_spaces.databases.sqlite import SQLiteDatabases
from jupyterhub_spaces.policy import Level, Mode, Subscription, Target, decide
from jupyterhub_spaces.service.queries import space_views
from jupyterhub_spaces.store import Store, record_lineage, space_query, space_spec, upgrade_db
from jupyterhub_spaces.utils import utcnow


@pytest.fixture
def cat(tmp_path):
    """Products A and B (asset b1 of B), derived asset d <- B; space 's' (owner ann,
    editor bob) holding product A, product B and asset b1."""
    store = Store(f"sqlite:///{tmp_path}/cat.sqlite")
    ids = {}
    with store.transaction() as db:
        org = orm.Organization(name="o")
        db.add(org)
        db.flush()
        ann, bob = orm.User(name="ann", org_id=org.id), orm.User(name="bob", org_id=org.id)
        A, B = orm.Product(name="A", owner_org_id=org.id), orm.Product(name="B", owner_org_id=org.id)
        db.add_all([ann, bob, A, B])
        db.flush()
        b1 = orm.Asset(name="b1", kind="table", location="b1", product_id=B.id, owner_org_id=org.id)
        d = orm.Asset(name="d", kind="table", derived=True, owner_org_id=org.id)
        db.add_all([b1, d])
        db.flush()
        record_lineage(db, d.id, [B.id], [])
        space = orm.Space(slug="s", display_name="S", owner_id=ann.id, tools=["jupyterlab"], profile="small")
        space.products = [orm.SpaceProduct(product_id=A.id), orm.SpaceProduct(product_id=B.id, position=1)]
        space.assets = [orm.SpaceAsset(asset_id=b1.id)]
        space.collaborators = [orm.Collaborator(user_id=ann.id, role="owner"),
                               orm.Collaborator(user_id=bob.id, role="editor")]
        db.add(space)
        db.flush()
        ids.update(A=A.id, B=B.id, b1=b1.id, d=d.id, space=space.id)
    yield store, ids
    store.dispose()


def taint(store, space_id):
    with store.transaction() as db:
        rows = db.execute(select(orm.SpaceTaint.product_id, orm.SpaceTaint.asset_id)
                          .where(orm.SpaceTaint.space_id == space_id).order_by(orm.SpaceTaint.id))
        return [("product", p) if p is not None else ("asset", a) for p, a in rows]


def set_spec(store, space_id, products=(), assets=()):
    """Replace the space's data as the spaces handler does."""
    with store.transaction() as db:
        db.execute(delete(orm.SpaceProduct).where(orm.SpaceProduct.space_id == space_id))
        db.execute(delete(orm.SpaceAsset).where(orm.SpaceAsset.space_id == space_id))
        db.add_all([orm.SpaceProduct(space_id=space_id, product_id=p, position=i) for i, p in enumerate(products)])
        db.add_all([orm.SpaceAsset(space_id=space_id, asset_id=a, position=i) for i, a in enumerate(assets)])


def test_the_database_taints_a_space_with_everything_it_ever_held(cat):
    store, ids = cat
    assert sorted(taint(store, ids["space"])) == [("asset", ids["b1"]), ("product", ids["A"]), ("product", ids["B"])]
    set_spec(store, ids["space"], products=[ids["A"]])  # B and b1 removed
    set_spec(store, ids["space"], products=[ids["A"]], assets=[ids["d"]])  # d added
    set_spec(store, ids["space"], products=[ids["A"], ids["B"]])  # B again: no second row
    assert sorted(taint(store, ids["space"])) == [
        ("asset", ids["b1"]), ("asset", ids["d"]), ("product", ids["A"]), ("product", ids["B"])]


def test_both_loading_paths_give_the_policy_the_taint(cat):
    store, ids = cat
    set_spec(store, ids["space"], products=[ids["A"]], assets=[ids["d"]])
    set_spec(store, ids["space"], products=[ids["A"]])
    with store.transaction() as db:
        row = db.scalar(space_query().where(orm.Space.id == ids["space"]))
        spec = space_spec(db, row)
        assert spec == space_spec(db, space_views(db, [ids["space"]])[ids["space"]])
    assert [t.id for t in spec.products] == [ids["A"]] and spec.assets == ()
    assert [t.id for t in spec.taint_products] == [ids["A"], ids["B"]]
    assert [a.id for a in spec.taint_assets] == [ids["b1"], ids["d"]]
    # the removed derived asset keeps its lineage
    assert [t.id for t in spec.taint_assets[1].upstream_products] == [ids["B"]]
    # bob: full on A, spaces on B -> still a sandbox once B is gone from the spec
    subs = [Subscription("bob", Target("product", ids["A"]), Level.full),
            Subscription("bob", Target("product", ids["B"]), Level.spaces)]
    decision = decide("bob", spec, subs, utcnow())
    assert decision.mode == Mode.sandbox
    assert "data from product 'B' remains in this space's databases" in decision.reason


def test_a_purge_resets_the_taint_to_the_spec_and_only_a_purge(cat, tmp_path):
    store, ids = cat
    set_spec(store, ids["space"], products=[ids["A"]])
    dbs = SQLiteDatabases(SpaceDatabases(sqlite_root=str(tmp_path / "dbs")), f"sqlite:///{tmp_path}/src.sqlite")
    dbs.prepare(SpaceData(ids["space"], "s"))
    with pytest.raises(PurgeNotConfirmed):
        purge(store, dbs, ids["space"], confirm="yes")
    assert len(taint(store, ids["space"])) == 3 and dbs.exists(ids["space"])
    purge(store, dbs, ids["space"], confirm=ids["space"])
    assert not dbs.exists(ids["space"])
    assert taint(store, ids["space"]) == [("product", ids["A"])]
    with store.transaction() as db:
        event = db.scalar(select(orm.AuditEvent).where(orm.AuditEvent.action == "databases.purge"))
        assert event.detail["taint_forgotten"] == 2


def test_a_failed_purge_keeps_the_taint(cat, tmp_path):
    store, ids = cat
    set_spec(store, ids["space"], products=[ids["A"]])

    class Broken(SQLiteDatabases):
        def _purge(self, space_id):
            raise OSError("disk gone")

    dbs = Broken(SpaceDatabases(sqlite_root=str(tmp_path / "dbs")), "sqlite://")
    with pytest.raises(OSError):
        purge(store, dbs, ids["space"], confirm=ids["space"])
    assert len(taint(store, ids["space"])) == 3


def test_revision_0002_backfills_the_taint_and_downgrades(tmp_path):
    url = f"sqlite:///{tmp_path}/old.sqlite"
    upgrade_db(url, "0001")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO organizations (id, name, display_name) VALUES (1, 'o', '')")
        conn.exec_driver_sql("INSERT INTO users (id, name, org_id, display_name, created_at) "
                             "VALUES (1, 'ann', 1, '', '2026-01-01')")
        conn.exec_driver_sql("INSERT INTO products (id, name, description, owner_org_id) VALUES (5, 'P', '', 1)")
        conn.exec_driver_sql("INSERT INTO assets (id, name, description, kind, location, product_id, "
                             "owner_org_id, derived, created_by, created_at) "
                             "VALUES (7, 'a', '', 'table', 'a', 5, 1, 0, '', '2026-01-01')")
        conn.exec_driver_sql("INSERT INTO spaces (id, slug, display_name, description, owner_id, tools, "
                             "profile, workers, created_at, updated_at) "
                             "VALUES (3, 's', 'S', '', 1, '[]', 'small', 0, '2026-01-01', '2026-01-01')")
        conn.exec_driver_sql("INSERT INTO space_products VALUES (3, 5, 0)")
        conn.exec_driver_sql("INSERT INTO space_assets VALUES (3, 7, 0)")
    upgrade_db(url, "0002")
    with engine.begin() as conn:
        rows = conn.exec_driver_sql(
            "SELECT space_id, product_id, asset_id FROM space_taint ORDER BY id").all()
        assert [tuple(r) for r in rows] == [(3, 5, None), (3, None, 7)]
    upgrade_db(url, "head")  # later revisions keep the taint
    store = Store(url)  # at head: the service accepts it and reads the taint
    with store.transaction() as db:
        spec = space_spec(db, db.scalar(space_query().where(orm.Space.id == 3)))
        assert spec.taint_products[0].id == 5 and spec.taint_assets[0].id == 7
    store.dispose()
    from alembic import command

    from jupyterhub_spaces.store import alembic_config

    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    with engine.begin() as conn:
        assert "space_taint" not in sa.inspect(conn).get_table_names()
        # the triggers went with it: the spec still takes rows
        conn.exec_driver_sql("DELETE FROM space_products")
        conn.exec_driver_sql("INSERT INTO space_products VALUES (3, 5, 0)")
    engine.dispose()
