"""Revision 0008 on a catalog with lineage, on SQLite and on a real PostgreSQL: the
closure is filled for the derived assets that exist, the access rule reads it, and the
downgrade removes it and keeps the edges."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from jupyterhub_spaces.store import Store, alembic_config, upgrade_db, upstream_of

#: derived asset -> its sources, as ("asset", id) / ("product", id); 6 has no lineage
EDGES = {
    3: [("asset", 1)],
    4: [("product", 2)],
    5: [("asset", 3), ("asset", 4)],
    7: [("asset", 6), ("asset", 5)],
}
#: (asset, source asset, source product, leaf) after the upgrade
CLOSURE = {
    (3, 1, None, True),
    (4, None, 2, True),
    (5, 3, None, False), (5, 4, None, False), (5, 1, None, True), (5, None, 2, True),
    (7, 6, None, True), (7, 5, None, False), (7, 3, None, False), (7, 4, None, False),
    (7, 1, None, True), (7, None, 2, True),
}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/catalog.sqlite"
    return request.getfixturevalue("pg_url")()


def closure(engine) -> set:
    with engine.connect() as conn:
        return {
            (a, s, p, bool(leaf))
            for a, s, p, leaf in conn.exec_driver_sql(
                "SELECT asset_id, source_asset_id, source_product_id, leaf FROM asset_lineage_closure")
        }


def test_revision_0008_fills_the_closure_and_goes_back(url):
    upgrade_db(url, "0005")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO organizations (id, name, display_name) VALUES (1, 'o', '')")
        conn.exec_driver_sql("INSERT INTO products (id, name, description, owner_org_id) "
                             "VALUES (1, 'P', '', 1), (2, 'Q', '', 1)")
        for asset_id, product_id in ((1, 1), (2, 2), (3, None), (4, None), (5, None), (6, None), (7, None)):
            conn.execute(sa.text(
                "INSERT INTO assets (id, name, description, kind, location, product_id, owner_org_id, "
                "derived, created_by, created_at) VALUES (:id, :name, '', 'table', '', :product, 1, "
                ":derived, '', '2026-12-01')"),
                {"id": asset_id, "name": f"a{asset_id}", "product": product_id, "derived": product_id is None})
        for asset_id, sources in EDGES.items():
            for kind, source in sources:
                conn.execute(sa.text(
                    "INSERT INTO lineage_edges (asset_id, source_asset_id, source_product_id) "
                    "VALUES (:a, :s, :p)"),
                    {"a": asset_id, "s": source if kind == "asset" else None,
                     "p": source if kind == "product" else None})

    upgrade_db(url, "0008")
    assert closure(engine) == CLOSURE
    # what the access rule asks for d7: product Q, primary p1, and the source without lineage
    store = Store(url)
    with store.transaction() as db:
        products, assets = upstream_of(db, [7])[7]
    store.dispose()
    assert ({t.id for t in products}, {a.id for a in assets}) == ({2}, {1, 6})

    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
    with engine.connect() as conn:
        assert "asset_lineage_closure" not in sa.inspect(conn).get_table_names()
        assert conn.exec_driver_sql("SELECT count(*) FROM lineage_edges").scalar() == 6
    upgrade_db(url, "head")
    assert closure(engine) == CLOSURE
    engine.dispose()
