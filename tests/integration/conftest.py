"""Integration fixtures: a real JupyterHub, the real configurable-http-proxy and the
spaces service running as a hub-managed service, on random free ports. Every request
goes through the proxy. Machinery in ``spaces_hub.py``.

Fixtures
--------
``db_kind`` (module, parametrized ``sqlite`` / ``postgresql``)
    Which database the spaces catalog of this module's hub uses. Every test that uses
    ``hub`` runs against both; PostgreSQL tests skip when no server answers at
    ``$SPACES_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``).
    Each run creates its own uniquely named database and drops it afterwards.
``catalog_db_url`` (module)
    The SQLAlchemy URL of that database.
``hub`` (module)
    A running :class:`spaces_hub.SpacesHub`: ``hub.url`` (the proxy),
    ``hub.api_token(user, scopes=None)``, ``hub.token_session(user)`` (an API client
    with a hub token), ``hub.browser(user)`` (a session logged in through the hub's
    login form and the OAuth flow into the service, sending X-XSRFToken on writes),
    ``hub.clients(user)`` (both, by name), ``hub.hub_api(method, path)`` (the hub's REST
    API as an admin service). Users: alice, bob, carol, dave, admin (password
    ``spaces_hub.PASSWORD``); ``admin`` holds ``custom:spaces:admin`` through the
    ``spaces-admin`` role; every user has ``access:services!service=spaces``.
    One hub per test module.
``store`` (module)
    A :class:`jupyterhub_spaces.store.Store` on the hub's catalog database, for
    seeding and for checking what the service wrote.
``catalog`` (function)
    Empties the catalog and loads the demo catalog (``jupyterhub_spaces.demo.seed``)
    before the test; returns a :class:`Catalog` with ids by name
    (``catalog.space("retail-forecasting")``, ``catalog.product("weather")``,
    ``catalog.asset("retail-sales", "stores")``, ``catalog.user("alice")``).
``db_dump`` (function)
    ``db_dump()`` returns every catalog table's rows (a dict), to assert that a
    refused request changed nothing: ``before = db_dump(); ...; assert db_dump(ignore=("audit_events",)) == before``.
``make_hub`` (function)
    ``make_hub(extra_config="", spaces_config="", db_url=None)`` starts another hub
    with extra lines appended to its ``jupyterhub_config.py`` / ``spaces_config.py``
    (stopped after the test).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))

from spaces_hub import (  # noqa: E402
    SpacesHub,
    clear_catalog,
    postgres_available,
    postgres_database,
)

from jupyterhub_spaces import demo, orm  # noqa: E402
from jupyterhub_spaces.settings import SpacesSettings  # noqa: E402
from jupyterhub_spaces.store import Store  # noqa: E402


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_kind(request):
    if request.param == "postgresql" and not postgres_available():
        pytest.skip("no PostgreSQL server answers at $SPACES_TEST_POSTGRES_URL")
    return request.param


@pytest.fixture(scope="module")
def catalog_db_url(db_kind, tmp_path_factory):
    if db_kind == "sqlite":
        path = tmp_path_factory.mktemp("catalog") / "spaces.sqlite"
        yield f"sqlite:///{path}"
        return
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def store(catalog_db_url):
    s = Store(catalog_db_url)
    yield s
    s.dispose()


@pytest.fixture(scope="module")
def hub(store, catalog_db_url, tmp_path_factory):
    h = SpacesHub(tmp_path_factory.mktemp("hub"), catalog_db_url)
    h.start()
    yield h
    h.stop()


def hub_settings(h: SpacesHub) -> SpacesSettings:
    """The SpacesSettings a hub's service runs with (paths inside its work dir)."""
    return SpacesSettings(
        db_url=h.db_url,
        data_root=str(h.workdir / "data"),
        source_db_url=f"sqlite:///{h.workdir / 'sources.sqlite'}",
    )


class Catalog:
    """Ids of the demo catalog's rows by name, read after seeding."""

    def __init__(self, store: Store):
        with store.transaction() as db:
            self.users = {u.name: u.id for u in db.scalars(select(orm.User))}
            self.products = {p.name: p.id for p in db.scalars(select(orm.Product))}
            self.assets = {
                (a.product.name if a.product else None, a.name): a.id
                for a in db.scalars(select(orm.Asset))
            }
            self.spaces = {s.slug: s.id for s in db.scalars(select(orm.Space))}

    def user(self, name):
        return self.users[name]

    def product(self, name):
        return self.products[name]

    def asset(self, product, name):
        return self.assets[(product, name)]

    def space(self, slug):
        return self.spaces[slug]


@pytest.fixture
def catalog(hub, store):
    clear_catalog(store)
    demo.seed(store, hub_settings(hub))
    return Catalog(store)


def dump(store: Store, ignore=()) -> dict:
    """Every row of every catalog table, as sorted tuples, by table name."""
    out = {}
    with store.transaction() as db:
        for table in orm.Base.metadata.sorted_tables:
            if table.name in ignore:
                continue
            rows = db.execute(select(table)).all()
            out[table.name] = sorted((tuple(map(repr, r)) for r in rows))
    return out


@pytest.fixture
def db_dump(store):
    return lambda ignore=(): dump(store, ignore)


@pytest.fixture
def make_hub(tmp_path_factory):
    started = []

    def start(extra_config: str = "", spaces_config: str = "", db_url: str | None = None):
        workdir = tmp_path_factory.mktemp("hub")
        h = SpacesHub(
            workdir,
            db_url or f"sqlite:///{workdir / 'spaces.sqlite'}",
            extra_config=extra_config,
            spaces_config=spaces_config,
        )
        started.append(h)
        h.start()
        return h

    yield start
    for h in started:
        h.stop()


