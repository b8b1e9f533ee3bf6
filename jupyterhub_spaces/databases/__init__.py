"""The Asset, Collaborative and Publish databases of each space.

:func:`backend` picks the server from ``c.SpaceDatabases.backend``; :func:`space_data`
reads what a backend needs of a space from the catalog. The session part that hands
a member their credentials is :data:`jupyterhub_spaces.databases.part.part`; publishing
and lineage are in :mod:`.publish` and :mod:`.lineage`.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from .. import orm
from ..store import session_assets
from .base import (
    ENV_VARS,
    KINDS,
    Connection,
    Credentials,
    DatabaseBackend,
    DatabaseError,
    ForeignData,
    Issued,
    PurgeNotConfirmed,
    SpaceData,
    TableSource,
)
from .config import SpaceDatabases

__all__ = [
    "ENV_VARS",
    "KINDS",
    "Connection",
    "Credentials",
    "DatabaseBackend",
    "DatabaseError",
    "ForeignData",
    "Issued",
    "PurgeNotConfirmed",
    "SpaceData",
    "SpaceDatabases",
    "TableSource",
    "backend",
    "space_data",
]


def backend(settings, config: SpaceDatabases | None = None) -> DatabaseBackend:
    """The backend configured for this site. ``settings`` is the
    :class:`~jupyterhub_spaces.settings.SpacesSettings` (for ``source_db_url``);
    ``config`` defaults to a :class:`SpaceDatabases` read from the same config."""
    if config is None:
        config = SpaceDatabases(config=getattr(settings, "config", None))
    if config.backend == "postgresql":
        from .postgres import PostgresDatabases

        return PostgresDatabases(config, settings.source_db_url, getattr(settings, "db_url", ""))
    from .sqlite import SQLiteDatabases

    return SQLiteDatabases(
        config, settings.source_db_url, config.sqlite_root_for(getattr(settings, "db_url", ""))
    )


def space_data(db: Session, space: orm.Space) -> SpaceData:
    """What a backend needs of ``space``, read from the catalog."""
    return SpaceData(
        id=space.id,
        slug=space.slug,
        created_at=space.created_at,
        tables=tuple(
            TableSource(a.id, a.name, a.location)
            for a in session_assets(space)
            if a.kind == "table" and a.location
        ),
    )
