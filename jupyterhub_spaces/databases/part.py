"""The session part that wires a space's databases into a session.

At start it provisions the space's databases (idempotent), issues the member a login
of their own and hands the session three URLs, in its environment
(``SPACES_ASSET_DB_URL``, ``SPACES_COLLABORATIVE_DB_URL``, ``SPACES_PUBLISH_DB_URL``)
and in ``~/.spaces/databases.json`` (``SPACES_DATABASES_FILE`` names it). At stop it
revokes the login, which also closes the session's open connections.
"""

from __future__ import annotations

import asyncio
import logging
import os

from ..session import SessionContext, SessionPartError
from ..store import shared
from . import backend as make_backend
from .base import Credentials, DatabaseError, SpaceData, TableSource
from .config import SpaceDatabases
from .lifecycle import reconcile
from .sqlite import sandbox_paths

log = logging.getLogger(__name__)

def _config(ctx: SessionContext) -> SpaceDatabases:
    return SpaceDatabases(config=getattr(ctx.settings, "config", None))


def session_data(ctx: SessionContext) -> SpaceData:
    """What a backend needs of the session's space, from the context (the spawner
    loaded the space once; this part does not load it again)."""
    return SpaceData(
        id=ctx.space_id,
        slug=ctx.slug,
        created_at=ctx.created_at,
        tables=tuple(
            TableSource(a.id, a.name, a.location) for a in ctx.assets if a.kind == "table" and a.location
        ),
    )


def credentials_path(ctx: SessionContext, config: SpaceDatabases) -> str:
    return os.path.join(ctx.workdir, config.credentials_file)


def write_credentials(path: str, creds: Credentials) -> None:
    """Write the credentials file readable by the session's owner only.

    The home belongs to the session's account, which may have put links in it: every
    step works on the opened folder and follows no symbolic link, so the hub never
    writes, or hands to the account, a file outside the home."""
    folder = os.path.dirname(path)
    name = os.path.basename(path)
    home = os.stat(os.path.dirname(folder) or ".")
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        try:
            os.unlink(name + ".new", dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        fd = os.open(
            name + ".new", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd
        )
        with os.fdopen(fd, "w") as f:
            f.write(creds.as_json())
            # a session running as another user than the hub must still read it
            if os.geteuid() == 0 and home.st_uid != 0:
                os.fchown(f.fileno(), home.st_uid, home.st_gid)
                os.fchown(dir_fd, home.st_uid, home.st_gid)
        os.replace(name + ".new", name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def remove_credentials(path: str) -> None:
    """Remove the credentials file (and a half-written one), following no link."""
    try:
        dir_fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        for name in (os.path.basename(path), os.path.basename(path) + ".new"):
            try:
                os.unlink(name, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
    finally:
        os.close(dir_fd)


class DatabasesPart:
    """Session part: the space's Asset, Collaborative and Publish databases."""

    name = "databases"

    def _issue(self, ctx: SessionContext, config: SpaceDatabases) -> Credentials:
        data = session_data(ctx)
        dbs = make_backend(ctx.settings, config)
        try:
            dbs.prepare(data)
            creds = dbs.issue(data, ctx.user, ctx.decision.role)
            # whenever a space starts, logins of its former members go too (the
            # service's periodic reconcile does the same for every space); the space
            # as the spawner just loaded it decides
            reconcile(
                shared(ctx.settings.db_url), dbs, ctx.settings.lineage_enforced,
                space_id=ctx.space_id, spec=ctx.spec,
            )
            return creds
        finally:
            dbs.dispose()

    async def start(self, ctx: SessionContext) -> dict[str, str]:
        config = _config(ctx)
        if ctx.decision.role is None:
            raise SessionPartError(f"{ctx.user} is not a member of space {ctx.slug}")
        try:
            creds = await asyncio.to_thread(self._issue, ctx, config)
        except DatabaseError as e:
            raise SessionPartError(f"the space databases are not available: {e}") from e
        env = creds.env()
        path = credentials_path(ctx, config)
        env["SPACES_DATABASES_FILE"] = path
        if ctx.backend == "local" and ctx.workdir:
            await asyncio.to_thread(write_credentials, path, creds)
            # what the session's sandbox binds, read-only or read-write (SQLite files)
            ctx.state["sandbox_binds"] = sandbox_paths(creds)
        else:
            # the hub cannot write into a pod's home: the session writes this at start
            env["SPACES_DATABASES_JSON"] = creds.as_json()
        log.info("databases of space %s issued to %s as %s", ctx.slug, ctx.user, creds.role)
        return env

    def _revoke(self, ctx: SessionContext, config: SpaceDatabases) -> None:
        dbs = make_backend(ctx.settings, config)
        try:
            dbs.revoke(ctx.space_id, ctx.user)
            reconcile(shared(ctx.settings.db_url), dbs, ctx.settings.lineage_enforced, space_id=ctx.space_id)
        finally:
            dbs.dispose()

    async def stop(self, ctx: SessionContext) -> None:
        config = _config(ctx)
        await asyncio.to_thread(self._revoke, ctx, config)
        if ctx.backend == "local" and ctx.workdir:
            # the file names credentials that no longer work: do not leave it lying around
            await asyncio.to_thread(remove_credentials, credentials_path(ctx, config))
        log.info("databases of space %s revoked for %s", ctx.slug, ctx.user)


part = DatabasesPart()
