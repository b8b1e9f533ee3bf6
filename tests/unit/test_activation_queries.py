"""One activation reads the catalog a bounded number of times, whoever else holds a
login to the space: the spawner asks the store once for the space and the decision,
and the session parts take what they need from the context it built.

The spawner runs in process (the space logic of :class:`SpaceSpawnerMixin` with the
real databases and tools parts, on SQLite space databases) against a real SQLite or
PostgreSQL catalog; every statement sent to the catalog, by any engine of this
process, is counted with SQLAlchemy's ``before_cursor_execute`` event.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from jupyterhub.spawner import Spawner
from sqlalchemy import Engine, event, select
from traitlets.config import Config

from jupyterhub_spaces import demo, orm, policy
from jupyterhub_spaces.settings import SpacesSettings
from jupyterhub_spaces.spawner import SpaceSpawnerMixin
from jupyterhub_spaces.store import ActivationState, activation, shared

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from spaces_hub import postgres_available, postgres_database  # noqa: E402

#: what one activation may cost in catalog statements: admitting the start (the
#: space with its relations, the lineage walk, the subscriptions that matter), the
#: databases part's check of the space's other logins, and the activation record
#: written twice (starting, active). Measured: 17 on SQLite and PostgreSQL.
BOUND = 20


class _Backend(Spawner):
    """A backend that starts nothing: only the space logic and the parts run."""

    async def start(self):
        return ("127.0.0.1", 9)

    async def poll(self):
        return None

    async def stop(self, now=False):
        return None


class InProcessSpaceSpawner(SpaceSpawnerMixin, _Backend):
    pass


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog(request, tmp_path):
    with ExitStack() as stack:
        if request.param == "postgresql":
            if not postgres_available():
                pytest.skip("no PostgreSQL server answers at $SPACES_TEST_POSTGRES_URL")
            db_url = stack.enter_context(postgres_database("spaces_queries"))
        else:
            db_url = f"sqlite:///{tmp_path}/catalog.sqlite"
        config = Config()
        config.SpacesSettings.db_url = db_url
        config.SpacesSettings.data_root = str(tmp_path / "data")
        config.SpacesSettings.source_db_url = f"sqlite:///{tmp_path}/sources.sqlite"
        config.SpaceDatabases.backend = "sqlite"
        config.SpaceDatabases.sqlite_root = str(tmp_path / "space-dbs")
        store = shared(db_url)
        demo.seed(store, SpacesSettings(config=config))
        with store.transaction() as db:
            space_id = db.scalar(select(orm.Space.id).where(orm.Space.slug == "retail-forecasting"))
            admin = db.scalar(select(orm.User.id).where(orm.User.name == "admin"))
            # a third member who may start it, so two others hold logins when they do
            db.add(orm.Collaborator(space_id=space_id, user_id=admin, role="viewer"))
        yield SimpleNamespace(store=store, config=config, space_id=space_id, url=db_url)
        store.dispose()


@contextmanager
def counted(url: str):
    """Count every statement any engine of this process sends to the catalog ``url``."""
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if conn.engine.url.render_as_string(hide_password=False) == url:
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", count)


def spawner(catalog, user: str) -> InProcessSpaceSpawner:
    hub_user = SimpleNamespace(name=user, spawners={}, orm_spawners={})
    orm_spawner = SimpleNamespace(name=policy.server_name(catalog.space_id), server=None, state={})
    return InProcessSpaceSpawner(user=hub_user, orm_spawner=orm_spawner, config=catalog.config)


async def activate(catalog, user: str) -> list[str]:
    sp = spawner(catalog, user)
    with counted(catalog.url) as statements:
        await sp.start()
    with catalog.store.transaction() as db:
        assert activation(db, catalog.space_id, user)["state"] == ActivationState.active
    return statements


async def test_one_activation_reads_the_catalog_a_bounded_number_of_times(catalog):
    alone = await activate(catalog, "alice")
    # bob and admin start while the others' logins are issued: the databases part
    # checks those logins without loading the space again for each
    await activate(catalog, "bob")
    crowded = await activate(catalog, "admin")
    print("statements per activation:", len(alone), len(crowded))
    assert len(alone) <= BOUND, "\n".join(alone)
    assert len(crowded) <= BOUND, "\n".join(crowded)
    assert len(crowded) == len(alone), (len(alone), len(crowded))
    # the space row itself is read once per activation
    spaces = [s for s in crowded if "FROM spaces" in s and "WHERE spaces.id" in s]
    assert len(spaces) == 1, spaces
