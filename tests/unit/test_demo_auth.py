"""The embedded demo's login: one random password made at first start, kept, printed;
only the demo users get in, and only with it."""

from __future__ import annotations

import os
import stat

import pytest
from sqlalchemy import func, select
from traitlets.config import Config

from jupyterhub_spaces import orm
from jupyterhub_spaces.auth import DemoAuthenticator


@pytest.fixture
def config(tmp_path):
    c = Config()
    c.DemoAuthenticator.password_file = str(tmp_path / "var" / "demo-password")
    c.SpacesSettings.db_url = f"sqlite:///{tmp_path}/spaces.sqlite"
    c.SpacesSettings.source_db_url = f"sqlite:///{tmp_path}/sources.sqlite"
    c.SpacesSettings.data_root = str(tmp_path / "data")
    return c


def make(config) -> DemoAuthenticator:
    auth = DemoAuthenticator(config=config)
    return auth


async def test_password_is_made_once_kept_and_printed(config, capsys):
    first = make(config)
    path = config.DemoAuthenticator.password_file
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first.password) >= 16
    err = capsys.readouterr().err
    assert f"password: {first.password}" in err
    assert "alice" in err and "dave" in err
    second = make(config)
    assert second.password == first.password
    assert f"password: {first.password}" in capsys.readouterr().err
    first.store.dispose()
    second.store.dispose()


async def test_only_demo_users_with_the_password(config):
    auth = make(config)
    ok = await auth.authenticate(None, {"username": "alice", "password": auth.password})
    assert ok == {"name": "alice"}
    assert await auth.authenticate(None, {"username": "alice", "password": "wrong"}) is None
    assert await auth.authenticate(None, {"username": "alice", "password": ""}) is None
    assert await auth.authenticate(None, {"username": "mallory", "password": auth.password}) is None
    assert auth.allowed_users == {"alice", "bob", "carol", "dave", "admin"}
    auth.store.dispose()


async def test_first_start_loads_the_demo_catalog_once(config):
    auth = make(config)
    with auth.store.transaction() as db:
        assert db.scalar(select(func.count()).select_from(orm.Space)) == 3
        # a user deletes a demo space; a restart must not bring it back
        db.delete(db.scalar(select(orm.Space).where(orm.Space.slug == "store-footprint")))
    auth.store.dispose()
    again = make(config)
    with again.store.transaction() as db:
        assert db.scalar(select(func.count()).select_from(orm.Space)) == 2
    again.store.dispose()
