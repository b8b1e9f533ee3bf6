"""The space databases as SQLite files: the embedded default.

Layout under ``SpaceDatabases.sqlite_root``::

    space-<id>/identity.json              which space these files belong to
    space-<id>/collaborative.sqlite
    space-<id>/publish.sqlite
    space-<id>/asset/asset.sqlite         mode 0444, in a directory of mode 0555
    space-<id>/asset/manifest.json        the assets the file was built from

SQLite has no users, so roles are advisory here: sessions get read-only URLs
(``mode=ro``) for what their role may not write. The Asset file is the exception: it
is written once by the hub, then made read-only on disk and kept in a read-only
directory, so no session can write it or replace it, whatever URL it opens it with
(unless it runs as the file's owner or as root: production uses PostgreSQL).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import stat
from contextlib import contextmanager
from urllib.parse import quote

from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import NullPool

from ..policy import Role, allowed
from .base import (
    Connection,
    Credentials,
    DatabaseBackend,
    FOREIGN_DATA_MESSAGE,
    ForeignData,
    Issued,
    PublishError,
    SpaceData,
    asset_table_names,
)
from .copy import copy_table, present_sources, split_location

log = logging.getLogger(__name__)

READ_ONLY_FILE = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH  # 0444
READ_ONLY_DIR = READ_ONLY_FILE | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH  # 0555


def _wal(engine):
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        # WAL lets one member read while another writes the shared file
        dbapi_conn.execute("PRAGMA journal_mode=WAL")

    return engine


#: the pragmas SQLAlchemy reads (isolation level, reflection); every other pragma is
#: refused
_READ_PRAGMAS = {"read_uncommitted", "table_info", "table_xinfo", "index_list", "index_info",
                 "index_xinfo", "foreign_key_list"}


#: functions that reach beyond the file, never enabled here: refused all the same
_DENIED_FUNCTIONS = {"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"}


def _read_only(action, arg1, arg2, _db, _trigger):
    """sqlite3 authorizer of the publish reader: reading only."""
    if action == sqlite3.SQLITE_FUNCTION:
        return sqlite3.SQLITE_DENY if (arg2 or "").lower() in _DENIED_FUNCTIONS else sqlite3.SQLITE_OK
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _READ_PRAGMAS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def read_only_url(path: str) -> str:
    return f"sqlite:///file:{quote(path)}?mode=ro&uri=true"


class SQLiteDatabases(DatabaseBackend):
    """One SQLite file per database per space."""

    name = "sqlite"

    def __init__(self, config, source_db_url: str, root: str | None = None):
        super().__init__(config, source_db_url)
        self.root = root or config.sqlite_root_for("")

    def space_dir(self, space_id: int) -> str:
        return os.path.join(self.root, f"space-{int(space_id)}")

    def path(self, space_id: int, kind: str) -> str:
        if kind == "asset":
            return os.path.join(self.space_dir(space_id), "asset", "asset.sqlite")
        return os.path.join(self.space_dir(space_id), f"{kind}.sqlite")

    # -- provisioning ------------------------------------------------------

    def prepare(self, space: SpaceData) -> None:
        top = self.space_dir(space.id)
        os.makedirs(top, exist_ok=True)
        self._check_identity(space)
        for kind in ("collaborative", "publish"):
            engine = _wal(create_engine(f"sqlite:///{self.path(space.id, kind)}"))
            with engine.connect():
                pass  # creates the file in WAL mode
            engine.dispose()
        self._build_assets(space)

    def _check_identity(self, space: SpaceData) -> None:
        marker = os.path.join(self.space_dir(space.id), "identity.json")
        if os.path.exists(marker):
            with open(marker) as f:
                identity = json.load(f).get("identity")
            if space.created_at is not None and identity and identity != space.identity:
                log.error(
                    "databases for space id %s in %s belong to an earlier, deleted space (%s); "
                    "purge them with: python -m jupyterhub_spaces.databases purge %s --confirm %s",
                    space.id, self.space_dir(space.id), identity, space.id, space.id,
                )
                raise ForeignData(FOREIGN_DATA_MESSAGE)
            if space.created_at is None or identity == space.identity:
                return
        with open(marker + ".new", "w") as f:
            json.dump({"identity": space.identity, "slug": space.slug}, f)
        os.replace(marker + ".new", marker)

    def _build_assets(self, space: SpaceData) -> None:
        asset_dir = os.path.dirname(self.path(space.id, "asset"))
        manifest_path = os.path.join(asset_dir, "manifest.json")
        source = create_engine(self.source_db_url) if space.tables else None
        try:
            tables = space.tables
            if source is not None:
                tables, missing = present_sources(source, tables)
                for t in missing:
                    # the session starts without it; the asset's owner must fix the catalog
                    log.warning(
                        "space %s: asset %s (%s) has no source table %r; left out of its "
                        "Asset database", space.id, t.asset_id, t.name, t.location,
                    )
            names = asset_table_names(tuple(tables))
            manifest = sorted([t.asset_id, t.location, names[t.asset_id]] for t in tables)
            if os.path.exists(self.path(space.id, "asset")) and os.path.exists(manifest_path):
                with open(manifest_path) as f:
                    if json.load(f) == manifest:
                        return  # the same assets: keep the file sessions may have open
            building = os.path.join(self.space_dir(space.id), "asset.sqlite.building")
            if os.path.exists(building):
                os.remove(building)
            target = create_engine(f"sqlite:///{building}")
            try:
                with target.begin() as dst:
                    for t in tables:
                        src_schema, src_table = split_location(t.location)
                        with source.connect() as src:
                            copy_table(src, src_table, dst, names[t.asset_id], src_schema)
            finally:
                target.dispose()
        finally:
            if source is not None:
                source.dispose()
        os.makedirs(asset_dir, exist_ok=True)
        os.chmod(asset_dir, 0o755)
        try:
            os.chmod(building, READ_ONLY_FILE)
            # a rename swaps the file atomically; open readers keep the old one
            os.replace(building, self.path(space.id, "asset"))
            with open(manifest_path + ".new", "w") as f:
                json.dump(manifest, f)
            os.replace(manifest_path + ".new", manifest_path)
        finally:
            # no directory entry can be made next to it: no journal, no replacement
            os.chmod(asset_dir, READ_ONLY_DIR)

    # -- credentials -------------------------------------------------------

    def issue(self, space: SpaceData, user: str, role: Role) -> Credentials:
        role = Role(role)
        writable = {
            "asset": False,
            "collaborative": allowed(role, "write_collaborative"),
            "publish": allowed(role, "write_publish"),
        }
        connections = {}
        for kind, write in writable.items():
            path = self.path(space.id, kind)
            url = f"sqlite:///{path}" if write else read_only_url(path)
            connections[kind] = Connection(
                kind=kind,
                url=url,
                sqlalchemy_url=url,
                read_only=not write,
                details={"path": path, "mode": "rw" if write else "ro"},
            )
        return Credentials(space.id, user, role.value, "", connections)

    def revoke(self, space_id: int, user: str) -> bool:
        # nothing was handed out but file paths; the session part removes its file
        return False

    def issued(self) -> list[Issued]:
        return []

    def exists(self, space_id: int) -> bool:
        return os.path.isdir(self.space_dir(space_id))

    def _purge(self, space_id: int) -> None:
        top = self.space_dir(space_id)
        asset_dir = os.path.dirname(self.path(space_id, "asset"))
        if os.path.isdir(asset_dir):
            os.chmod(asset_dir, 0o755)
        shutil.rmtree(top, ignore_errors=False) if os.path.isdir(top) else None

    # -- publishing --------------------------------------------------------

    @contextmanager
    def publish_reader(self, space_id: int, role: Role):
        """The Publish file opened read-only (``mode=ro``, ``query_only``), with
        ``trusted_schema`` off (what the file's own schema defines may call only
        harmless functions) and an authorizer that lets the connection read and
        nothing else: no ``ATTACH`` of another file, no write, no other pragma."""
        path = self.path(space_id, "publish")
        if not os.path.exists(path):
            raise PublishError(
                404,
                f"space {space_id} has no Publish database yet: activate the space, write "
                "the table there, then publish it",
                {"table": "no Publish database"},
            )

        def connect():
            raw = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, check_same_thread=False)
            raw.execute("PRAGMA trusted_schema = OFF")
            raw.execute("PRAGMA query_only = ON")
            raw.set_authorizer(_read_only)
            return raw

        engine = create_engine("sqlite://", creator=connect, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                yield conn, None
        finally:
            engine.dispose()

    def publish_table_kind(self, conn, schema, table) -> str | None:
        row = conn.execute(
            text(
                "SELECT type, sql FROM main.sqlite_master "
                "WHERE name = :n COLLATE NOCASE AND type IN ('table', 'view')"
            ),
            {"n": table},
        ).first()
        if row is None:
            return None
        kind, sql = row
        if kind != "table":
            return kind
        if (sql or "").lstrip().upper().startswith("CREATE VIRTUAL"):
            return "virtual table"
        return "table"
