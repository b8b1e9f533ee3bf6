"""The one interface of the space databases, whatever server holds them.

Each space has three databases:

* **asset** — read-only copies of (or views over) exactly the space's ``table``
  assets, whose rows live in the source database;
* **collaborative** — shared tables: owners and editors write, every member reads;
* **publish** — tables owners and publishers prepare for publishing as derived assets.

A backend (:mod:`.postgres`, :mod:`.sqlite`) provisions them (:meth:`prepare`), hands a
member credentials at activation (:meth:`issue`) and takes them back at suspend or when
the member is gone (:meth:`revoke`). Data outlives activations and the space itself:
only :meth:`purge`, with a confirmation, removes it.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from datetime import datetime

from ..policy import Role

#: the three databases of a space, in the order sessions list them
KINDS = ("asset", "collaborative", "publish")

#: environment variable of each database's URL in the session
ENV_VARS = {
    "asset": "SPACES_ASSET_DB_URL",
    "collaborative": "SPACES_COLLABORATIVE_DB_URL",
    "publish": "SPACES_PUBLISH_DB_URL",
}


class DatabaseError(RuntimeError):
    """The space databases cannot do what was asked; the message says why and what to do."""


class PublishError(DatabaseError):
    """A publish was refused or failed; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields


class PurgeNotConfirmed(DatabaseError):
    """A purge was asked for without the confirmation it needs."""


class ForeignData(DatabaseError):
    """Databases exist for this space id but belong to an earlier, deleted space."""


#: what a user is told (where the data is and how to purge it go to the hub's log only)
FOREIGN_DATA_MESSAGE = (
    "this space's databases could not be set up: data of an earlier space is in the "
    "way; an administrator must clear it (the hub's log says how)"
)


@dataclass(frozen=True)
class TableSource:
    """A ``table`` asset of a space: its rows are in the source database at ``location``."""

    asset_id: int
    name: str
    location: str


@dataclass(frozen=True)
class SpaceData:
    """What a backend needs to know of a space."""

    id: int
    slug: str
    #: when the space was created: tells a space apart from a deleted one with the same id
    created_at: datetime | None = None
    tables: tuple[TableSource, ...] = ()

    @property
    def identity(self) -> str:
        stamp = self.created_at.isoformat() if self.created_at else ""
        return f"{self.id}:{stamp}"


@dataclass(frozen=True)
class Connection:
    """How a session reaches one of its databases."""

    kind: str
    #: libpq / SQLAlchemy URL (``postgresql://…`` or ``sqlite:///…``)
    url: str
    #: the same with an explicit driver, for SQLAlchemy 2 code
    sqlalchemy_url: str
    read_only: bool
    #: the parts of the URL for clients that take them one by one (R's DBI, tools)
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Credentials:
    """What one member gets for one activation of one space."""

    space_id: int
    user: str
    role: str
    #: the database login role ("" for SQLite)
    login: str
    connections: dict[str, Connection]

    def env(self) -> dict[str, str]:
        """The session's environment variables: one URL per database."""
        return {ENV_VARS[kind]: conn.url for kind, conn in self.connections.items()}

    def as_json(self) -> str:
        """The credentials file of the session (``~/.spaces/databases.json``)."""
        doc = {
            "space_id": self.space_id,
            "user": self.user,
            "role": self.role,
            "databases": {kind: asdict(conn) for kind, conn in self.connections.items()},
        }
        return json.dumps(doc, indent=2, sort_keys=True)


@dataclass(frozen=True)
class Issued:
    """A credential a backend handed out and has not taken back yet."""

    space_id: int
    user: str
    role: str
    login: str


_SAFE = re.compile(r"[^a-z0-9_]+")


def safe_identifier(name: str, fallback: str = "t") -> str:
    """A lowercase SQL identifier made of ``name`` (letters, digits, underscores)."""
    ident = _SAFE.sub("_", name.lower()).strip("_") or fallback
    if not ident[0].isalpha():
        ident = f"{fallback}_{ident}"
    return ident[:50]


def asset_table_names(tables: tuple[TableSource, ...]) -> dict[int, str]:
    """The table name of each asset inside the Asset database: the source table's own
    name (without its schema), made unique with the asset id when two collide."""
    names: dict[int, str] = {}
    taken: set[str] = set()
    for t in sorted(tables, key=lambda t: t.asset_id):
        base = safe_identifier(t.location.rsplit(".", 1)[-1])
        name = base if base not in taken else f"{base}_{t.asset_id}"
        taken.add(name)
        names[t.asset_id] = name
    return names


class DatabaseBackend(ABC):
    """Provisioning and credentials of the space databases on one server."""

    name: str = ""

    def __init__(self, config, source_db_url: str):
        #: a :class:`~.config.SpaceDatabases`
        self.config = config
        self.source_db_url = source_db_url

    @abstractmethod
    def prepare(self, space: SpaceData) -> None:
        """Create the space's databases when missing and bring its Asset database in
        line with ``space.tables`` (exactly those, nothing else). Idempotent."""

    @abstractmethod
    def issue(self, space: SpaceData, user: str, role: Role) -> Credentials:
        """Credentials for ``user`` acting as ``role`` in ``space``, replacing any
        earlier ones of the same user and space."""

    @abstractmethod
    def revoke(self, space_id: int, user: str) -> bool:
        """Take back ``user``'s credentials for the space (open connections are closed).
        Returns whether there was anything to take back."""

    @abstractmethod
    def issued(self) -> list[Issued]:
        """Every credential handed out and not taken back."""

    @abstractmethod
    def exists(self, space_id: int) -> bool:
        """Whether databases of this space id exist (they outlive the space)."""

    @abstractmethod
    def _purge(self, space_id: int) -> None: ...

    def purge(self, space_id: int, confirm: object = None) -> None:
        """Delete the space's three databases and everything in them, for good.

        ``confirm`` must repeat the space id: deleting a space never does this on its own.
        """
        if str(confirm) != str(space_id):
            raise PurgeNotConfirmed(
                f"purging the databases of space {space_id} deletes its collaborative and "
                f"publish data for good: repeat the space id to confirm (confirm={space_id})"
            )
        self._purge(space_id)

    @abstractmethod
    def publish_reader(self, space_id: int, role: Role):
        """A context manager giving ``(connection, schema)``: a read-only connection to
        the space's Publish database with exactly the rights members of ``role`` have
        there, never more (what a member defined there may run when read), and the
        schema its tables are in. Raises :class:`PublishError` (404) when the space has
        no Publish database."""

    @abstractmethod
    def publish_table_kind(self, conn, schema: str | None, table: str) -> str | None:
        """What ``table`` is in the Publish database, read on a :meth:`publish_reader`
        connection: None when there is no such table, ``"table"`` for a plain table
        whose rows can be read as data alone, else what it is in words ("view",
        "table with row-level security", ...)."""

    def dispose(self) -> None:
        """Release connection pools."""
