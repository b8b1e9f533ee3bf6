"""Settings of the space databases, read from the same ``spaces_config.py`` as
:class:`~jupyterhub_spaces.settings.SpacesSettings` (section ``c.SpaceDatabases``)."""

from __future__ import annotations

import os

from traitlets import CaselessStrEnum, Integer, List, Unicode, validate
from traitlets.config import Configurable


class SpaceDatabases(Configurable):
    """Where each space's Asset, Collaborative and Publish databases live.

    ``backend = "sqlite"`` (the embedded default) keeps one SQLite file per database
    per space under :attr:`sqlite_root`. ``backend = "postgresql"`` (production) keeps
    three schemas per space in the database named by :attr:`admin_url`, and hands
    each member a login role of their own whose grants the server enforces.
    """

    backend = CaselessStrEnum(
        ["sqlite", "postgresql"],
        default_value="sqlite",
        help="Which database server holds the space databases: 'sqlite' (one file per "
        "database per space; grants are advisory) or 'postgresql' (schemas and login "
        "roles; grants enforced by the server).",
    ).tag(config=True)

    admin_url = Unicode(
        "",
        help="PostgreSQL backend: SQLAlchemy URL of the database that holds every "
        "space's schemas, as a role that may create roles and schemas (a superuser, "
        "or CREATEROLE plus ownership of the database and of the source schema). "
        "Sessions never get this URL.",
    ).tag(config=True)

    session_host = Unicode(
        "",
        help="PostgreSQL backend: the host name sessions use to reach the server "
        "(default: the host of admin_url). Set it when sessions run elsewhere, "
        "e.g. the in-cluster service name on Kubernetes.",
    ).tag(config=True)

    session_port = Integer(
        0, help="PostgreSQL backend: the port sessions use (default: the port of admin_url)."
    ).tag(config=True)

    role_prefix = Unicode(
        "spaces_",
        help="PostgreSQL backend: prefix of every role this hub creates. Roles are "
        "cluster-wide, so hubs sharing one server need different prefixes.",
    ).tag(config=True)

    closed_databases = List(
        Unicode(),
        default_value=["postgres", "template1"],
        help="PostgreSQL backend: other databases on the server of admin_url that member "
        "logins must not connect to. The backend takes CONNECT on each from PUBLIC "
        "(superusers, owners, the administrator and the catalog's user keep it; grant it "
        "by name to other roles that need one of them). The catalog's database is closed "
        "too when it is on this server. Close every other database with a pg_hba.conf "
        "line that rejects the <role_prefix>members group.",
    ).tag(config=True)

    asset_mode = CaselessStrEnum(
        ["auto", "view", "copy"],
        default_value="auto",
        help="PostgreSQL backend: how the Asset schema presents source tables. 'view' "
        "makes read-only views over the source tables (they must live in the database "
        "of admin_url; always current); 'copy' copies their rows when the asset joins "
        "the space or its location changes (a static copy); 'auto' uses views when the "
        "source database is that same database and copies otherwise.",
    ).tag(config=True)

    connection_limit = Integer(
        10, help="PostgreSQL backend: the most connections one member's role may hold."
    ).tag(config=True)

    sqlite_root = Unicode(
        "",
        help="SQLite backend: directory holding one folder of database files per space "
        "(default: jupyterhub_spaces_databases next to the SQLite catalog of "
        "SpacesSettings.db_url, else in the current directory).",
    ).tag(config=True)

    snapshot_prefix = Unicode(
        "spaces_derived_",
        help="Name prefix of the tables a publish writes into the source database "
        "(SpacesSettings.source_db_url). Tables with this prefix that no catalog asset "
        "names are left-overs of an interrupted publish and are dropped by reconcile.",
    ).tag(config=True)

    credentials_file = Unicode(
        ".spaces/databases.json",
        help="Where in the session's home the connection details are written, for "
        "Python, R and the tools (the same URLs are in the SPACES_*_DB_URL variables).",
    ).tag(config=True)

    reconcile_interval = Integer(
        60,
        help="Seconds between two reconcile runs in the service: each run stops the "
        "running sessions the rules no longer allow, revokes the roles of members who "
        "were removed, lost their subscription or whose space was deleted, and drops "
        "snapshots of interrupted publishes. 0 turns the periodic runs off.",
    ).tag(config=True)

    def sqlite_root_for(self, catalog_url: str) -> str:
        """:attr:`sqlite_root`, or its default for the catalog at ``catalog_url``."""
        if self.sqlite_root:
            return os.path.abspath(self.sqlite_root)
        base = os.getcwd()
        if catalog_url.startswith("sqlite:///"):
            path = catalog_url[len("sqlite:///"):].split("?", 1)[0]
            if path and path != ":memory:":
                base = os.path.dirname(os.path.abspath(path))
        return os.path.join(base, "jupyterhub_spaces_databases")

    @validate("role_prefix")
    def _check_prefix(self, proposal):
        value = proposal["value"]
        if not value or not value.replace("_", "a").isalnum() or not value[0].isalpha():
            raise ValueError(
                f"role_prefix {value!r} must start with a letter and hold only letters, "
                "digits and underscores"
            )
        return value.lower()
