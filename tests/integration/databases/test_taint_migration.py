"""Revision 0002 on a real PostgreSQL catalog: the taint is backfilled from the specs,
the trigger keeps it from then on, and the downgrade removes table, trigger and
function."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from jupyterhub_spaces.store import alembic_config, upgrade_db

def test_revision_0002_on_postgresql(pg_url):
    url = pg_url()
    upgrade_db(url, "0001")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO organizations (id, name, display_name) VALUES (1, 'o', '')")
        conn.exec_driver_sql("INSERT INTO users (id, name, org_id, display_name, created_at) "
                             "VALUES (1, 'ann', 1, '', now())")
        conn.exec_driver_sql("INSERT INTO products (id, name, description, owner_org_id) "
                             "VALUES (5, 'P', '', 1), (6, 'Q', '', 1)")
        conn.exec_driver_sql("INSERT INTO spaces (id, slug, display_name, description, owner_id, tools, "
                             "profile, workers, created_at, updated_at) "
                             "VALUES (3, 's', 'S', '', 1, '[]', 'small', 0, now(), now())")
        conn.exec_driver_sql("INSERT INTO space_products VALUES (3, 5, 0)")
    upgrade_db(url, "0002")
    with engine.begin() as conn:
        # the spec gains Q and loses P: both stay in the taint
        conn.exec_driver_sql("INSERT INTO space_products VALUES (3, 6, 1)")
        conn.exec_driver_sql("DELETE FROM space_products WHERE product_id = 5")
        conn.exec_driver_sql("INSERT INTO space_products VALUES (3, 6, 2) ON CONFLICT DO NOTHING")
        rows = conn.exec_driver_sql(
            "SELECT space_id, product_id, added_at IS NOT NULL FROM space_taint ORDER BY id").all()
        assert [tuple(r) for r in rows] == [(3, 5, True), (3, 6, True)]
    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    with engine.begin() as conn:
        assert "space_taint" not in sa.inspect(conn).get_table_names()
        assert conn.exec_driver_sql(
            "SELECT count(*) FROM pg_proc WHERE proname IN ('space_products_taint', 'space_assets_taint')").scalar() == 0
        conn.exec_driver_sql("INSERT INTO space_products VALUES (3, 5, 0)")
    upgrade_db(url, "head")
    with engine.begin() as conn:
        rows = conn.exec_driver_sql("SELECT product_id FROM space_taint ORDER BY product_id").all()
        assert [r[0] for r in rows] == [5, 6]
    engine.dispose()
