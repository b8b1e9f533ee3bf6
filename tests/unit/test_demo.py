"""The demo catalog: what each demo user gets, and that seeding twice changes nothing."""

from __future__ import annotations

import csv
import os
import uuid
from contextlib import ExitStack, contextmanager

import pytest
from sqlalchemy import MetaData, Table, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from jupyterhub_spaces import demo, orm
from jupyterhub_spaces.settings import SpacesSettings
from jupyterhub_spaces.store import Store, decide, make_engine


PG_URL = os.environ.get(
    "SPACES_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def postgres_database():
    """A new, uniquely named PostgreSQL database, dropped afterwards."""
    name = f"spaces_demo_{uuid.uuid4().hex[:12]}"
    server = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as e:
        server.dispose()
        pytest.skip(f"PostgreSQL at {PG_URL} is not reachable: {e}")
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def seeded(request, tmp_path):
    with ExitStack() as stack:
        if request.param == "postgres":
            db_url = stack.enter_context(postgres_database())
            source_url = stack.enter_context(postgres_database())
        else:
            db_url = f"sqlite:///{tmp_path}/catalog.sqlite"
            source_url = f"sqlite:///{tmp_path}/sources/sources.sqlite"
        settings = SpacesSettings(
            db_url=db_url, source_db_url=source_url, data_root=str(tmp_path / "data")
        )
        store = Store(settings.db_url)
        stack.callback(store.dispose)
        demo.seed(store, settings)
        yield store, settings


def counts(store):
    with store.transaction() as db:
        return {
            model.__tablename__: db.scalar(select(func.count()).select_from(model))
            for model in (
                orm.Organization,
                orm.User,
                orm.Product,
                orm.Asset,
                orm.Subscription,
                orm.Space,
                orm.SpaceProduct,
                orm.SpaceAsset,
                orm.Collaborator,
                orm.AuditEvent,
            )
        }


def decisions(store, slug, users):
    with store.transaction() as db:
        space = db.scalar(select(orm.Space).where(orm.Space.slug == slug))
        return decide(db, users, space)


def test_access_outcomes(seeded):
    store, _ = seeded
    got = decisions(store, "retail-forecasting", ["alice", "bob", "carol", "dave"])
    assert got["alice"].mode.value == "workbench"
    assert got["bob"].mode.value == "sandbox"
    assert [t.name for t in got["bob"].sandboxed_by] == ["retail-sales"]
    assert got["carol"].mode.value == "locked"
    assert [(m.target.kind, m.target.name, m.reason) for m in got["carol"].missing] == [
        ("product", "weather", "missing")
    ]
    assert got["dave"].mode.value == "not_member"
    dave = decisions(store, "weather-trends", ["dave", "alice"])
    assert dave["dave"].mode.value == "workbench"
    assert dave["alice"].mode.value == "not_member"


def test_orgs_do_not_see_each_other(seeded):
    store, _ = seeded
    with store.transaction() as db:
        orgs = {u.name: u.org.name for u in db.scalars(select(orm.User))}
        grants = db.scalars(select(orm.OrgVisibility)).all()
    assert orgs["dave"] == "contoso"
    assert {orgs[n] for n in ("alice", "bob", "carol", "admin")} == {"northwind"}
    assert grants == []


def test_seeding_twice_changes_nothing(seeded):
    store, settings = seeded
    before = counts(store)
    files_before = sorted(
        (p, os.path.getmtime(os.path.join(p, f)))
        for p, _, fs in os.walk(settings.data_root)
        for f in fs
    )
    assert demo.seed(store, settings) == {}
    assert counts(store) == before
    assert sorted(
        (p, os.path.getmtime(os.path.join(p, f)))
        for p, _, fs in os.walk(settings.data_root)
        for f in fs
    ) == files_before
    # and the source tables keep one copy of the rows
    engine = make_engine(settings.source_db_url)
    try:
        with engine.connect() as conn:
            table = Table("retail_daily_sales", MetaData(), autoload_with=conn)
            assert conn.scalar(select(func.count()).select_from(table)) == len(
                demo.read_rows(demo.PRODUCTS[0].assets[0])
            )
    finally:
        engine.dispose()


def test_seed_once_respects_deletions(seeded):
    store, settings = seeded
    with store.transaction() as db:
        db.delete(db.scalar(select(orm.Space).where(orm.Space.slug == "store-footprint")))
    assert demo.seed_once(store, settings) is False
    with store.transaction() as db:
        assert db.scalar(select(orm.Space).where(orm.Space.slug == "store-footprint")) is None


def test_assets_hold_the_shipped_data(seeded):
    store, settings = seeded
    with store.transaction() as db:
        assets = {a.name: (a.kind, a.location) for a in db.scalars(select(orm.Asset))}
    assert {kind for kind, _ in assets.values()} == {"table", "files"}
    engine = make_engine(settings.source_db_url)
    try:
        with engine.connect() as conn:
            for name, (kind, location) in assets.items():
                if kind == "table":
                    table = Table(location, MetaData(), autoload_with=conn)
                    rows = conn.execute(select(table)).all()
                    assert 50 < len(rows) <= 500, name
    finally:
        engine.dispose()
    kind, location = assets["stores"]
    with open(os.path.join(settings.data_root, location, "stores.csv"), newline="") as f:
        stores = list(csv.DictReader(f))
    assert {s["store_id"] for s in stores} == {"NW01", "NW02", "NW03"}


def test_seed_needs_a_data_root(tmp_path):
    settings = SpacesSettings(
        db_url=f"sqlite:///{tmp_path}/c.sqlite", source_db_url=f"sqlite:///{tmp_path}/s.sqlite"
    )
    store = Store(settings.db_url)
    try:
        with pytest.raises(ValueError, match="data_root is not set"):
            demo.seed(store, settings)
        assert counts(store)["users"] == 0
    finally:
        store.dispose()
