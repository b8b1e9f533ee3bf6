"""The space databases as SQLite files: the embedded default.

Layout under ``SpaceDatabases.sqlite_root`` (modes when the hub runs as root; ``G`` is
the space's group ``spaces-space-<id>``, see :mod:`jupyterhub_spaces.accounts`)::

    space-<id>/                                  root      0700
    space-<id>/identity.json                     root      0600  which space these are
    space-<id>/collaborative/                    root:G    2770
    space-<id>/collaborative/collaborative.sqlite root:G   0660
    space-<id>/publish/publish.sqlite            (as collaborative)
    space-<id>/asset/                            root:G    0750
    space-<id>/asset/asset.sqlite                root:G    0440
    space-<id>/asset/manifest.json               root      0600  the assets it was built from

A local session gets ``G`` as a supplementary group and the three directories bound
into its sandbox at the same paths (:func:`sandbox_paths`): read-write where its
member's role may write, read-only otherwise, and the Asset directory always
read-only. So a viewer's session cannot write the Collaborative file whatever URL it
opens, no session can write the Asset file, and no session sees another space's
directory (it is not in its sandbox; ``sqlite_root`` and the state directory above it
are 0700). The files use SQLite's rollback journal, not WAL: a WAL reader must write
the ``-shm`` file, which a read-only bind forbids, while a rollback-journal reader
needs only to read the file. Without root (no session accounts) everything is private
to the hub: 0700 directories, 0600 files.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
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

#: (directory mode, file mode) of each database kind when the hub runs as root
SHARED_MODES = {"collaborative": (0o2770, 0o660), "publish": (0o2770, 0o660), "asset": (0o750, 0o440)}
KINDS = ("asset", "collaborative", "publish")


def _wal(engine):
    """Set the rollback journal on every connection (the name is historical: a WAL
    reader must write the -shm file, which a session's read-only bind forbids)."""

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        dbapi_conn.execute("PRAGMA journal_mode=DELETE")

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


def space_gid(space_id: int) -> int | None:
    """The space's group (made when missing) when the hub runs as root, else None."""
    if os.geteuid() != 0:
        return None
    from ..accounts import ensure_group, space_group_name

    return ensure_group(space_group_name(space_id))


def share(path: str, kind: str, gid: int | None, is_dir: bool) -> None:
    """Give ``path`` (a database directory or file of ``kind``) its mode and group."""
    dir_mode, file_mode = SHARED_MODES[kind]
    if gid is None:
        os.chmod(path, 0o700 if is_dir else 0o600)
        return
    os.chown(path, 0, gid)
    os.chmod(path, dir_mode if is_dir else file_mode)


def sandbox_paths(creds: Credentials) -> dict[str, list[str]]:
    """The directories a local session's sandbox binds for ``creds``: read-write
    where the member may write, read-only otherwise (empty for non-SQLite logins)."""
    paths: dict[str, list[str]] = {"read_only": [], "read_write": []}
    for conn in creds.connections.values():
        path = conn.details.get("path") if conn.details else None
        if path:
            paths["read_only" if conn.read_only else "read_write"].append(os.path.dirname(path))
    return paths


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
        return os.path.join(self.space_dir(space_id), kind, f"{kind}.sqlite")

    # -- provisioning ------------------------------------------------------

    def prepare(self, space: SpaceData) -> None:
        top = self.space_dir(space.id)
        os.makedirs(top, 0o700, exist_ok=True)
        os.chmod(top, 0o700)
        self._check_identity(space)
        gid = space_gid(space.id)
        for kind in ("collaborative", "publish"):
            path = self.path(space.id, kind)
            os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
            self._move_old_layout(space.id, kind)
            engine = _wal(create_engine(f"sqlite:///{path}"))
            with engine.connect():
                pass  # creates the file with the rollback journal
            engine.dispose()
            share(os.path.dirname(path), kind, gid, is_dir=True)
            share(path, kind, gid, is_dir=False)
        self._build_assets(space, gid)

    def _move_old_layout(self, space_id: int, kind: str) -> None:
        """Move ``space-<id>/<kind>.sqlite`` of an earlier layout into its directory."""
        old = os.path.join(self.space_dir(space_id), f"{kind}.sqlite")
        if os.path.exists(old) and not os.path.exists(self.path(space_id, kind)):
            engine = _wal(create_engine(f"sqlite:///{old}"))
            with engine.connect():
                pass  # leaving WAL folds the -wal file back into the database
            engine.dispose()
            os.replace(old, self.path(space_id, kind))

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

    def _build_assets(self, space: SpaceData, gid: int | None = None) -> None:
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
                        # the same assets: keep the file sessions may have open
                        share(asset_dir, "asset", gid, is_dir=True)
                        share(self.path(space.id, "asset"), "asset", gid, is_dir=False)
                        return
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
        os.makedirs(asset_dir, 0o700, exist_ok=True)
        share(building, "asset", gid, is_dir=False)
        # a rename swaps the file atomically; open readers keep the old one
        os.replace(building, self.path(space.id, "asset"))
        with open(manifest_path + ".new", "w") as f:
            json.dump(manifest, f)
        os.chmod(manifest_path + ".new", 0o600)
        os.replace(manifest_path + ".new", manifest_path)
        # sessions bind this directory read-only: no session writes or replaces the file
        share(asset_dir, "asset", gid, is_dir=True)

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
