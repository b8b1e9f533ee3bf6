"""The databases session part on its own: what a session gets at start, what stop
takes back (real PostgreSQL; the spawner is left out)."""

from __future__ import annotations

import json
import os

import psycopg
import pytest
from sqlalchemy import delete
from traitlets.config import Config

from jupyterhub_spaces import orm
from jupyterhub_spaces.databases.part import part
from jupyterhub_spaces.session import SessionContext, SessionPart, SessionPartError, make_context
from jupyterhub_spaces.settings import SpacesSettings
from jupyterhub_spaces.store import decide_spec, load_space, session_assets, space_spec


def context(world, user, tmp_path) -> SessionContext:
    config = Config()
    config.SpaceDatabases.backend = "postgresql"
    config.SpaceDatabases.admin_url = world.data_url
    config.SpaceDatabases.role_prefix = world.dbs.prefix
    settings = SpacesSettings(config=config, db_url=world.store.url, source_db_url=world.dbs.source_db_url)
    with world.store.transaction() as db:
        # what the spawner does: the space and the decision once, then the pure builder
        space = load_space(db, world.retail, with_product_assets=True)
        spec = space_spec(db, space)
        decision = decide_spec(db, [user], spec)[user]
        ctx = make_context(user, space, session_assets(space), spec, decision, settings)
    home = tmp_path / user
    home.mkdir(exist_ok=True)
    ctx.workdir = str(home)
    return ctx


async def test_start_gives_env_and_file_stop_takes_them_back(world, tmp_path):
    assert isinstance(part, SessionPart)
    ctx = context(world, "bob", tmp_path)
    env = await part.start(ctx)
    path = env["SPACES_DATABASES_FILE"]
    assert path == os.path.join(ctx.workdir, ".spaces", "databases.json")
    assert os.stat(path).st_mode & 0o777 == 0o600
    doc = json.load(open(path))
    assert doc["role"] == "editor"
    for kind in ("asset", "collaborative", "publish"):
        assert env[f"SPACES_{kind.upper()}_DB_URL"] == doc["databases"][kind]["url"]
    with psycopg.connect(env["SPACES_ASSET_DB_URL"]) as conn:
        assert conn.execute("SELECT count(*) FROM sales").fetchone() == (2,)

    await part.stop(ctx)
    assert not os.path.exists(path)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(env["SPACES_ASSET_DB_URL"], connect_timeout=5)
    await part.stop(ctx)  # twice, as after a hub restart: nothing left to do, no error


async def test_a_space_starting_revokes_its_former_members(world, tmp_path):
    carol = await part.start(context(world, "carol", tmp_path))
    with world.store.transaction() as db:
        db.execute(delete(orm.Collaborator).where(
            orm.Collaborator.space_id == world.retail,
            orm.Collaborator.user_id == world.ids["user:carol"]))
    alice_ctx = context(world, "alice", tmp_path)
    await part.start(alice_ctx)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(carol["SPACES_COLLABORATIVE_DB_URL"], connect_timeout=5)
    assert [i.user for i in world.dbs.issued()] == ["alice"]
    await part.stop(alice_ctx)


async def test_misconfigured_server_fails_the_activation_with_a_reason(world, tmp_path):
    ctx = context(world, "alice", tmp_path)
    ctx.settings.config.SpaceDatabases.admin_url = "sqlite:///nowhere.sqlite"
    with pytest.raises(SessionPartError, match="must be a PostgreSQL URL"):
        await part.start(ctx)
