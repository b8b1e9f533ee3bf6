"""The SQLite backend of the space databases (the embedded default): files per space,
an Asset file nobody can write, data that outlives activations and spaces."""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from jupyterhub_spaces import isolate
from jupyterhub_spaces.databases import ForeignData, PurgeNotConfirmed, SpaceData, TableSource
from jupyterhub_spaces.databases.__main__ import main as cli
from jupyterhub_spaces.databases.config import SpaceDatabases
from jupyterhub_spaces.databases.sqlite import SQLiteDatabases
from jupyterhub_spaces.isolate import runtime_paths

CREATED = datetime(2026, 5, 1, 9, 30)


@pytest.fixture
def tmp_path():
    # readable for an unprivileged user all the way down, as a hub's data directory
    # would be (pytest's own temporary directories are private to their owner)
    path = Path(tempfile.mkdtemp(prefix="spaces-dbs-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    for root, dirs, _ in os.walk(path):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
    shutil.rmtree(path)


@pytest.fixture
def dbs(tmp_path):
    source = f"sqlite:///{tmp_path}/sources.sqlite"
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE sales (day DATE, store TEXT, revenue REAL)")
        conn.exec_driver_sql("INSERT INTO sales VALUES ('2024-03-01', 'leeds', 1200.5)")
        conn.exec_driver_sql("CREATE TABLE secret (x INT)")
    engine.dispose()
    backend = SQLiteDatabases(SpaceDatabases(sqlite_root=str(tmp_path / "dbs")), source)
    yield backend
    backend.dispose()


SPACE = SpaceData(3, "s", CREATED, (TableSource(10, "sales", "sales"),))


def test_asset_file_holds_exactly_the_space_tables_read_only(dbs):
    dbs.prepare(SPACE)
    creds = dbs.issue(SPACE, "alice", "owner")
    asset = creds.connections["asset"]
    assert asset.read_only and "mode=ro" in asset.url
    engine = sa.create_engine(asset.sqlalchemy_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT store FROM sales")).fetchall() == [("leeds",)]
        assert set(sa.inspect(conn).get_table_names()) == {"sales"}
        with pytest.raises(sa.exc.OperationalError, match="readonly"):
            conn.execute(sa.text("DELETE FROM sales"))
    engine.dispose()


def test_asset_file_is_unwritable_even_opened_read_write(dbs):
    dbs.prepare(SPACE)
    path = dbs.issue(SPACE, "alice", "owner").connections["asset"].details["path"]
    root = os.geteuid() == 0
    # as root: the space's group may read, nobody may write the file or its directory;
    # otherwise: the hub's own
    assert os.stat(path).st_mode & 0o777 == (0o440 if root else 0o600)
    assert os.stat(os.path.dirname(path)).st_mode & 0o777 == (0o750 if root else 0o700)
    # a session process (not the hub's user) ignoring the URL and opening it read-write
    attempt = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "print(c.execute('SELECT count(*) FROM sales').fetchone()[0], flush=True); "
        "c.execute('DELETE FROM sales'); c.commit()"
    )
    command = [sys.executable, "-c", attempt, path]
    if root and not isolate.missing():
        # root ignores file modes: the session runs as an ordinary account in the
        # space's group, with the directory bound read-only as a session gets it
        nobody = pwd.getpwnam("nobody")
        home = dbs.root + "-home"
        os.makedirs(home)
        os.chown(home, nobody.pw_uid, nobody.pw_gid)
        box = isolate.Sandbox(
            nobody.pw_uid, nobody.pw_gid, (os.stat(path).st_gid,), home, isolate.host_system(),
            read_only=(*runtime_paths(), os.path.dirname(path)),
        )
        command = isolate.sandbox_argv(box, command)
    elif root:
        pytest.skip(isolate.missing())
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.stdout.strip() == "1", result.stderr  # it can read the data ...
    assert result.returncode != 0  # ... and cannot change it
    assert "attempt to write a readonly database" in result.stderr
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT count(*) FROM sales").fetchone() == (1,)


def test_roles_get_read_only_urls_for_what_they_may_not_write(dbs):
    dbs.prepare(SPACE)
    modes = {
        role: {k: c.read_only for k, c in dbs.issue(SPACE, "u", role).connections.items()}
        for role in ("owner", "editor", "viewer", "publisher")
    }
    assert modes == {
        "owner": {"asset": True, "collaborative": False, "publish": False},
        "editor": {"asset": True, "collaborative": False, "publish": True},
        "viewer": {"asset": True, "collaborative": True, "publish": True},
        "publisher": {"asset": True, "collaborative": True, "publish": False},
    }


def test_collaborative_data_survives_activations_and_space_deletion(dbs):
    dbs.prepare(SPACE)
    url = dbs.issue(SPACE, "alice", "owner").connections["collaborative"].url
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (n INT)")
        conn.exec_driver_sql("INSERT INTO notes VALUES (1)")
    engine.dispose()
    dbs.revoke(SPACE.id, "alice")
    dbs.prepare(SPACE)  # the next activation
    engine = sa.create_engine(dbs.issue(SPACE, "bob", "viewer").connections["collaborative"].url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT n FROM notes").fetchall() == [(1,)]
    engine.dispose()
    with pytest.raises(PurgeNotConfirmed):
        dbs.purge(SPACE.id, confirm="yes")
    assert dbs.exists(SPACE.id)
    dbs.purge(SPACE.id, confirm=SPACE.id)
    assert not dbs.exists(SPACE.id)


def test_asset_file_follows_the_space_assets(dbs, tmp_path):
    dbs.prepare(SPACE)
    path = dbs.issue(SPACE, "alice", "owner").connections["asset"].details["path"]
    before = os.stat(path).st_ino
    dbs.prepare(SPACE)
    assert os.stat(path).st_ino == before  # unchanged assets: the same file
    dbs.prepare(SpaceData(3, "s", CREATED, ()))
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_a_new_space_with_a_reused_id_does_not_get_the_old_data(dbs):
    dbs.prepare(SPACE)
    with pytest.raises(ForeignData, match="earlier space") as refused:
        dbs.prepare(SpaceData(3, "other", datetime(2026, 6, 1), ()))
    # the user reads this: no server path, no admin command
    assert "/" not in str(refused.value) and "purge" not in str(refused.value)


def test_cli_purge_needs_the_id_twice(dbs, tmp_path, capsys):
    dbs.prepare(SPACE)
    config = tmp_path / "spaces_config.py"
    config.write_text(
        f"c.SpaceDatabases.sqlite_root = {dbs.root!r}\n"
        f"c.SpacesSettings.source_db_url = {dbs.source_db_url!r}\n"
        f"c.SpacesSettings.db_url = 'sqlite:///{tmp_path}/catalog.sqlite'\n"
    )
    assert cli(["--config", str(config), "purge", "3", "--confirm", "4"]) == 2
    assert "repeat the space id" in capsys.readouterr().err
    assert dbs.exists(3)
    assert cli(["--config", str(config), "purge", "3", "--confirm", "3"]) == 0
    assert not dbs.exists(3)


def test_copy_keeps_values_of_untyped_and_typed_columns(tmp_path):
    from jupyterhub_spaces.databases.copy import copy_table

    src = sa.create_engine(f"sqlite:///{tmp_path}/a.sqlite")
    dst = sa.create_engine(f"sqlite:///{tmp_path}/b.sqlite")
    with src.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE base (d DATE, n INTEGER, x REAL)")
        conn.exec_driver_sql("INSERT INTO base VALUES ('2024-03-01', 3, 1.5)")
        # what a session writing with CREATE TABLE ... AS gets: columns without types
        conn.exec_driver_sql("CREATE TABLE derived AS SELECT d, n * 2 AS twice, 'k' || n AS label FROM base")
    with src.connect() as s, dst.begin() as d:
        copy_table(s, "base", d, "base_copy")
        copy_table(s, "derived", d, "derived_copy")
    with dst.connect() as conn:
        assert conn.exec_driver_sql("SELECT d, n, x FROM base_copy").fetchall() == [("2024-03-01", 3, 1.5)]
        # untyped columns are copied as text: the value is kept, never refused
        assert conn.exec_driver_sql("SELECT d, twice, label FROM derived_copy").fetchall() == [
            ("2024-03-01", "6", "k3")
        ]
    src.dispose()
    dst.dispose()
