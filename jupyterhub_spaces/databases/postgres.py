"""The space databases on PostgreSQL: three schemas per space, roles and grants.

Layout, in the one database named by ``SpaceDatabases.admin_url``:

* schemas ``space_<id>_asset``, ``space_<id>_collaborative``, ``space_<id>_publish``,
  with nothing granted to PUBLIC;
* per space one NOLOGIN *group* role per collaborator role
  (``<prefix>s<id>_owner``, ``…_editor``, ``…_viewer``, ``…_publisher``) holding that
  role's grants, taken from :data:`jupyterhub_spaces.policy.roles.PERMISSIONS`;
* per member and activation one LOGIN role with an opaque random name
  (``<prefix>l_<random>``: PostgreSQL shows every role name and role comment to every
  login, so neither names a user or a space), a generated password, ``NOINHERIT``,
  member of exactly its group and starting every connection as that group
  (``ALTER ROLE … SET role``). Tables a member creates are therefore owned by the
  group and outlive the login role; ``SET ROLE NONE`` leaves the login with no
  privileges at all;
* the schema ``<prefix>registry``, readable by the administrator only: which login
  belongs to which member of which space, and which space the schemas of an id belong
  to.

Every login role is also a member of ``<prefix>members``. Member logins may connect
to the space databases' database only: CONNECT on it is taken from PUBLIC and given
to each login; on the other databases of the server the backend manages (the
catalog's when it is on this server, and ``SpaceDatabases.closed_databases``) CONNECT
is taken from PUBLIC too. Any other database is closed to members with one
``pg_hba.conf`` line for ``+<prefix>members``.
"""

from __future__ import annotations

import json
import logging
import secrets
from contextlib import contextmanager
from urllib.parse import quote

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from ..policy import Role, allowed
from .base import (
    Connection as SessionConnection,
    Credentials,
    DatabaseBackend,
    DatabaseError,
    FOREIGN_DATA_MESSAGE,
    ForeignData,
    Issued,
    PublishError,
    SpaceData,
    asset_table_names,
)
from .copy import copy_table, present_sources, split_location

log = logging.getLogger(__name__)

SCHEMA_KINDS = {"asset": "asset", "collaborative": "collaborative", "publish": "publish"}
TABLE_WRITE = "INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


#: what pg_class.relkind means, for a refusal to publish
RELKINDS = {
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "S": "sequence",
    "c": "composite type",
    "i": "index",
    "I": "partitioned index",
    "t": "TOAST table",
}

#: the relation and every table it reads through (inheritance children, partitions)
_PUBLISH_TABLE = text(
    """
    WITH RECURSIVE rel(oid, root) AS (
        SELECT c.oid, true FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = :schema AND c.relname = :table
        UNION
        SELECT i.inhrelid, false FROM pg_catalog.pg_inherits i JOIN rel ON i.inhparent = rel.oid
    )
    SELECT rel.root,
           c.relkind::text AS relkind, c.relrowsecurity, c.relhasrules,
           EXISTS (
               SELECT 1 FROM pg_catalog.pg_attribute a
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 AND a.attgenerated::text NOT IN ('', 's')
           ) AS computed
    FROM rel JOIN pg_catalog.pg_class c ON c.oid = rel.oid
    """
)


def schema_name(space_id: int, kind: str) -> str:
    """The schema of one of a space's databases."""
    return f"space_{int(space_id)}_{SCHEMA_KINDS[kind]}"


class PostgresDatabases(DatabaseBackend):
    """Space databases as PostgreSQL schemas with per-member login roles."""

    name = "postgresql"

    def __init__(self, config, source_db_url: str, catalog_url: str = ""):
        super().__init__(config, source_db_url)
        #: the catalog's database, closed to member logins when it is on this server
        self.catalog_url = catalog_url
        self._registry_ready = False
        #: databases this administrator could not close (warned once)
        self._unclosable: set[str] = set()
        if not config.admin_url:
            raise DatabaseError(
                "SpaceDatabases.backend is 'postgresql' but SpaceDatabases.admin_url is "
                "empty: set it to the database that holds the space schemas, e.g. "
                "postgresql+psycopg://spaces_admin@db:5432/spaces_data"
            )
        self.admin = make_url(config.admin_url)
        if self.admin.get_backend_name() != "postgresql":
            raise DatabaseError(
                f"SpaceDatabases.admin_url must be a PostgreSQL URL, got {self.admin.drivername!r}"
            )
        self.prefix = config.role_prefix
        self._engine = None

    # -- names -------------------------------------------------------------

    @property
    def engine(self):
        if self._engine is None:
            self._engine = create_engine(self.admin, pool_pre_ping=True, pool_size=5)
        return self._engine

    @property
    def members_role(self) -> str:
        return f"{self.prefix}members"

    def group(self, space_id: int, role: Role | str) -> str:
        return f"{self.prefix}s{int(space_id)}_{Role(role).value}"

    @property
    def registry(self) -> str:
        """The administrator's own schema: who holds which login, which space owns
        which schemas."""
        return f"{self.prefix}registry"

    def new_login_name(self) -> str:
        return f"{self.prefix}l_{secrets.token_hex(8)}"

    def login(self, space_id: int, user: str) -> str | None:
        """The login role issued to ``user`` in ``space_id`` (None: none is)."""
        self._ensure_registry()
        with self.engine.connect() as conn:
            return self._login(conn, space_id, user)

    def _login(self, conn: Connection, space_id: int, user: str) -> str | None:
        return conn.scalar(
            text(f"SELECT login FROM {quote_ident(self.registry)}.logins WHERE space_id = :s AND user_name = :u"),
            {"s": int(space_id), "u": user},
        )

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- helpers -----------------------------------------------------------

    def _lock(self, conn: Connection, space_id: int) -> None:
        # one space is provisioned by one transaction at a time (two members
        # activating together would otherwise race on CREATE ROLE / CREATE SCHEMA)
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
            {"k": f"jupyterhub-spaces:{self.prefix}:{int(space_id)}"},
        )
        conn.exec_driver_sql("SET LOCAL lock_timeout = '15s'")

    def _lock_shared(self, conn: Connection) -> None:
        # the members role and the database's own grants are shared by every space:
        # concurrent changes to them fail ("tuple concurrently updated", duplicate
        # role). Taken last in a transaction, so it is held only until the commit.
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
            {"k": f"jupyterhub-spaces:{self.prefix}:shared"},
        )

    def _role_exists(self, conn: Connection, name: str) -> bool:
        return bool(conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}))

    def _schema_exists(self, conn: Connection, name: str) -> bool:
        return bool(
            conn.scalar(text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": name})
        )

    def _ensure_role(self, conn: Connection, name: str, comment: dict) -> None:
        if not self._role_exists(conn, name):
            conn.exec_driver_sql(f"CREATE ROLE {quote_ident(name)} NOLOGIN")
        conn.exec_driver_sql(
            f"COMMENT ON ROLE {quote_ident(name)} IS {quote_literal(json.dumps(comment))}"
        )

    def _same_server(self, url: str) -> tuple[bool, str | None]:
        """Whether ``url`` is a PostgreSQL database on the server of ``admin_url``,
        and its database name."""
        try:
            other = make_url(url)
        except Exception:
            return False, None
        if other.get_backend_name() != "postgresql":
            return False, None
        hosts = {"localhost", "127.0.0.1", "::1"}

        def place(u):
            host = u.host or "localhost"
            return ("localhost" if host in hosts else host, u.port or 5432)

        return place(other) == place(self.admin), other.database

    def _same_database_as_source(self) -> bool:
        same, name = self._same_server(self.source_db_url)
        return same and name == self.admin.database

    # -- the registry and the server's other databases ---------------------

    def _ensure_registry(self) -> None:
        """Create the administrator's registry once; take back logins issued before
        it (their names and comments named users and spaces)."""
        if self._registry_ready:
            return
        reg = quote_ident(self.registry)
        with self.engine.begin() as conn:
            self._lock_shared(conn)
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {reg}")
            conn.exec_driver_sql(f"REVOKE ALL ON SCHEMA {reg} FROM PUBLIC")
            conn.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {reg}.logins (login text PRIMARY KEY, "
                "space_id integer NOT NULL, user_name text NOT NULL, role text NOT NULL, "
                "UNIQUE (space_id, user_name))"
            )
            conn.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {reg}.spaces (space_id integer PRIMARY KEY, identity text NOT NULL)"
            )
            legacy = self._legacy_logins(conn)
        for name, space_id in legacy:
            log.info("dropping login %s of space %s: issued by an earlier version", name, space_id)
            self._drop_login(name, space_id)
        self._registry_ready = True

    def _legacy_logins(self, conn: Connection) -> list[tuple[str, int]]:
        found = []
        for name, comment in conn.execute(
            text(
                "SELECT rolname, shobj_description(oid, 'pg_authid') FROM pg_roles "
                "WHERE starts_with(rolname, :p) AND rolcanlogin"
            ),
            {"p": self.prefix},
        ):
            try:
                doc = json.loads(comment or "")
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("spaces") == "login":
                found.append((name, int(doc["space_id"])))
        return found

    def _closed_databases(self, conn: Connection) -> list[str]:
        names = set(self.config.closed_databases)
        if self.catalog_url:
            same, name = self._same_server(self.catalog_url)
            if same and name:
                names.add(name)
        names.discard(conn.scalar(text("SELECT current_database()")))
        return sorted(names)

    def _open_to_public(self, conn: Connection, name: str) -> bool:
        return bool(conn.scalar(
            text(
                "SELECT has_database_privilege('public', oid, 'CONNECT') FROM pg_database "
                "WHERE datname = :n AND datallowconn"
            ),
            {"n": name},
        ))

    def _close_databases(self, conn: Connection) -> None:
        """Take CONNECT from PUBLIC on the other databases members must not reach.
        Whoever connects there as the administrator or the catalog keeps it; other
        roles that need one of these databases get CONNECT granted by name."""
        keep = {conn.scalar(text("SELECT current_user"))}
        if self.catalog_url:
            keep.add(make_url(self.catalog_url).username or "")
        for name in self._closed_databases(conn):
            if name in self._unclosable or not self._open_to_public(conn, name):
                continue
            problem = "only its owner or a superuser may"
            try:
                with conn.begin_nested():
                    for role in sorted(r for r in keep if r and self._role_exists(conn, r)):
                        conn.exec_driver_sql(f"GRANT CONNECT ON DATABASE {quote_ident(name)} TO {quote_ident(role)}")
                    conn.exec_driver_sql(f"REVOKE CONNECT ON DATABASE {quote_ident(name)} FROM PUBLIC")
            except Exception as e:
                problem = str(e).splitlines()[0]
            if self._open_to_public(conn, name):
                # (PostgreSQL only warns when a non-owner revokes: check the outcome)
                self._unclosable.add(name)
                log.warning(
                    "cannot take CONNECT on database %s from PUBLIC (%s): member logins may "
                    "connect to it. Close it with a pg_hba.conf line rejecting +%s, or run "
                    "the hub's administrator as the database's owner",
                    name, problem, self.members_role,
                )

    # -- provisioning ------------------------------------------------------

    def prepare(self, space: SpaceData) -> None:
        self._ensure_registry()
        with self.engine.begin() as conn:
            self._lock(conn, space.id)
            self._check_identity(conn, space)
            db = quote_ident(conn.scalar(text("SELECT current_database()")))
            groups = {role: self.group(space.id, role) for role in Role}
            for role, name in groups.items():
                self._ensure_role(
                    conn, name, {"spaces": "group", "space_id": space.id, "role": role.value}
                )
            for kind in SCHEMA_KINDS:
                schema = quote_ident(schema_name(space.id, kind))
                conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                conn.exec_driver_sql(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
            self._sync_assets(conn, space)
            self._grant(conn, space.id, groups)
            self._lock_shared(conn)
            self._ensure_role(conn, self.members_role, {"spaces": "members"})
            every = ", ".join(quote_ident(name) for name in groups.values())
            conn.exec_driver_sql(f"REVOKE CONNECT, TEMPORARY ON DATABASE {db} FROM PUBLIC")
            conn.exec_driver_sql(f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {every}")
            self._close_databases(conn)

    def _check_identity(self, conn: Connection, space: SpaceData) -> None:
        """Refuse the schemas of a deleted space with the same id; else note that
        they are ``space``'s (in the registry: a comment on the schema would show
        every member which space it is)."""
        reg = quote_ident(self.registry)
        collab = schema_name(space.id, "collaborative")
        identity = conn.scalar(text(f"SELECT identity FROM {reg}.spaces WHERE space_id = :s"), {"s": space.id})
        if identity is None:
            # schemas of an earlier version carry the identity in a comment
            found = conn.scalar(
                text("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = :n"),
                {"n": collab},
            )
            try:
                identity = json.loads(found).get("identity") if found else None
            except (ValueError, AttributeError):
                identity = None
        if identity and space.created_at is not None and identity != space.identity:
            log.error(
                "databases for space id %s belong to an earlier, deleted space (%s); purge "
                "them with: python -m jupyterhub_spaces.databases purge %s --confirm %s",
                space.id, identity, space.id, space.id,
            )
            raise ForeignData(FOREIGN_DATA_MESSAGE)
        if space.created_at is None and identity:
            return
        conn.execute(
            text(
                f"INSERT INTO {reg}.spaces (space_id, identity) VALUES (:s, :i) "
                "ON CONFLICT (space_id) DO UPDATE SET identity = EXCLUDED.identity"
            ),
            {"s": space.id, "i": space.identity},
        )
        if self._schema_exists(conn, collab):
            conn.exec_driver_sql(f"COMMENT ON SCHEMA {quote_ident(collab)} IS NULL")

    def _grant(self, conn: Connection, space_id: int, groups: dict) -> None:
        asset = quote_ident(schema_name(space_id, "asset"))
        collab = quote_ident(schema_name(space_id, "collaborative"))
        publish = quote_ident(schema_name(space_id, "publish"))
        q = {role: quote_ident(name) for role, name in groups.items()}
        every = ", ".join(q.values())
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {asset} TO {every}")
        conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA {asset} TO {every}")
        conn.exec_driver_sql(f"REVOKE CREATE ON SCHEMA {asset} FROM {every}")
        conn.exec_driver_sql(
            f"REVOKE {TABLE_WRITE} ON ALL TABLES IN SCHEMA {asset} FROM {every}"
        )
        for schema, read_action, write_action in (
            (collab, "read_collaborative", "write_collaborative"),
            # every member may look at what is being prepared for publishing
            (publish, "read", "write_publish"),
        ):
            readers = [q[r] for r in Role if allowed(r, read_action) or allowed(r, write_action)]
            writers = [q[r] for r in Role if allowed(r, write_action)]
            others = [q[r] for r in Role if q[r] not in writers]
            if readers:
                conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {', '.join(readers)}")
                conn.exec_driver_sql(
                    f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {', '.join(readers)}"
                )
                conn.exec_driver_sql(
                    f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {', '.join(readers)}"
                )
            if others:
                # role table changes take effect at the next activation
                joined = ", ".join(others)
                conn.exec_driver_sql(f"REVOKE CREATE ON SCHEMA {schema} FROM {joined}")
                conn.exec_driver_sql(
                    f"REVOKE {TABLE_WRITE} ON ALL TABLES IN SCHEMA {schema} FROM {joined}"
                )
                conn.exec_driver_sql(
                    f"REVOKE USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} FROM {joined}"
                )
            if not writers:
                continue
            joined = ", ".join(writers)
            conn.exec_driver_sql(f"GRANT CREATE ON SCHEMA {schema} TO {joined}")
            conn.exec_driver_sql(f"GRANT {TABLE_WRITE} ON ALL TABLES IN SCHEMA {schema} TO {joined}")
            conn.exec_driver_sql(
                f"GRANT USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {joined}"
            )
            # whatever one writer creates, the other writers may write and readers read
            for creator in writers:
                for what, read_priv, write_priv in (
                    ("TABLES", "SELECT", TABLE_WRITE),
                    ("SEQUENCES", "SELECT", "USAGE, UPDATE"),
                ):
                    prefix = f"ALTER DEFAULT PRIVILEGES FOR ROLE {creator} IN SCHEMA {schema}"
                    conn.exec_driver_sql(
                        f"{prefix} GRANT {read_priv} ON {what} TO {', '.join(readers)}"
                    )
                    conn.exec_driver_sql(f"{prefix} GRANT {write_priv} ON {what} TO {joined}")

    def _asset_mode(self) -> str:
        mode = self.config.asset_mode
        if mode == "auto":
            return "view" if self._same_database_as_source() else "copy"
        if mode == "view" and not self._same_database_as_source():
            raise DatabaseError(
                "SpaceDatabases.asset_mode is 'view' but SpacesSettings.source_db_url is not "
                "the database of SpaceDatabases.admin_url: views cannot reach another "
                "database; use asset_mode 'copy' or move the source tables"
            )
        return mode

    def _sync_assets(self, conn: Connection, space: SpaceData) -> None:
        """Make the Asset schema hold exactly the space's table assets."""
        schema = schema_name(space.id, "asset")
        mode = self._asset_mode()
        names = asset_table_names(space.tables)
        wanted = {}
        source_engine = None
        default_schema = None
        tables = space.tables
        if tables:
            source_engine = create_engine(self.source_db_url)
            tables, missing = present_sources(source_engine, tables)
            for t in missing:
                # the session starts without it; the asset's owner must fix the catalog
                log.warning(
                    "space %s: asset %s (%s) has no source table %r; left out of its Asset schema",
                    space.id, t.asset_id, t.name, t.location,
                )
            if mode == "view":
                with source_engine.connect() as src:
                    # an unqualified location is resolved where the source URL points
                    default_schema = src.scalar(text("SELECT current_schema()"))
        try:
            for t in tables:
                wanted[names[t.asset_id]] = json.dumps(
                    {"asset_id": t.asset_id, "location": t.location, "mode": mode}
                )
            present = {
                name: (kind, comment)
                for name, kind, comment in conn.execute(
                    text(
                        "SELECT c.relname, c.relkind, obj_description(c.oid, 'pg_class') "
                        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = :s AND c.relkind IN ('r', 'v', 'm', 'p')"
                    ),
                    {"s": schema},
                )
            }
            for name, (kind, comment) in present.items():
                if wanted.get(name) != comment:
                    what = "VIEW" if kind == "v" else "TABLE"
                    conn.exec_driver_sql(
                        f"DROP {what} IF EXISTS {quote_ident(schema)}.{quote_ident(name)} CASCADE"
                    )
            for t in tables:
                name = names[t.asset_id]
                if name in present and present[name][1] == wanted[name]:
                    continue  # unchanged: leave it (and readers' locks) alone
                src_schema, src_table = split_location(t.location)
                target = f"{quote_ident(schema)}.{quote_ident(name)}"
                if mode == "view":
                    source = f"{quote_ident(src_schema or default_schema)}.{quote_ident(src_table)}"
                    conn.exec_driver_sql(f"CREATE VIEW {target} AS SELECT * FROM {source}")
                    conn.exec_driver_sql(f"COMMENT ON VIEW {target} IS {quote_literal(wanted[name])}")
                else:
                    with source_engine.connect() as src:
                        copy_table(src, src_table, conn, name, src_schema, schema)
                    conn.exec_driver_sql(f"COMMENT ON TABLE {target} IS {quote_literal(wanted[name])}")
        finally:
            if source_engine is not None:
                source_engine.dispose()

    # -- credentials -------------------------------------------------------

    def issue(self, space: SpaceData, user: str, role: Role) -> Credentials:
        role = Role(role)
        password = secrets.token_urlsafe(24)
        group = self.group(space.id, role)
        self._ensure_registry()
        with self.engine.begin() as conn:
            self._lock(conn, space.id)
            if not self._role_exists(conn, group):
                raise DatabaseError(
                    f"the databases of space {space.id} are not prepared: prepare() first"
                )
            db = conn.scalar(text("SELECT current_database()"))
            login = self._login(conn, space.id, user) or self.new_login_name()
            conn.execute(
                text(
                    f"INSERT INTO {quote_ident(self.registry)}.logins (login, space_id, user_name, role) "
                    "VALUES (:l, :s, :u, :r) ON CONFLICT (login) DO UPDATE SET role = EXCLUDED.role"
                ),
                {"l": login, "s": space.id, "u": user, "r": role.value},
            )
            ql = quote_ident(login)
            if self._role_exists(conn, login):
                # left over from a session the hub did not see stop: new password, and
                # the role is granted afresh below
                conn.exec_driver_sql(
                    f"ALTER ROLE {ql} WITH LOGIN NOINHERIT PASSWORD {quote_literal(password)}"
                )
                for other in Role:
                    conn.exec_driver_sql(
                        f"REVOKE {quote_ident(self.group(space.id, other))} FROM {ql}"
                    )
            else:
                conn.exec_driver_sql(
                    f"CREATE ROLE {ql} WITH LOGIN NOINHERIT "
                    f"CONNECTION LIMIT {int(self.config.connection_limit)} "
                    f"PASSWORD {quote_literal(password)}"
                )
            conn.exec_driver_sql(f"GRANT {quote_ident(group)} TO {ql}")
            conn.exec_driver_sql(
                f"ALTER ROLE {ql} IN DATABASE {quote_ident(db)} SET role = {quote_literal(group)}"
            )
            self._lock_shared(conn)
            conn.exec_driver_sql(f"GRANT {quote_ident(self.members_role)} TO {ql}")
            # NOINHERIT: the login itself needs CONNECT, its group holds everything else
            conn.exec_driver_sql(f"GRANT CONNECT ON DATABASE {quote_ident(db)} TO {ql}")
        return Credentials(
            space_id=space.id,
            user=user,
            role=role.value,
            login=login,
            connections={
                kind: self._connection(space.id, kind, login, password, db, role)
                for kind in SCHEMA_KINDS
            },
        )

    def _connection(self, space_id, kind, login, password, db, role) -> SessionConnection:
        host = self.config.session_host or self.admin.host or "localhost"
        port = self.config.session_port or self.admin.port or 5432
        schema = schema_name(space_id, kind)
        path = [schema] + [schema_name(space_id, k) for k in SCHEMA_KINDS if k != kind]
        options = quote("-csearch_path=" + ",".join(path), safe="")
        base = f"{quote(login, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(db)}"
        writable = {
            "asset": False,
            "collaborative": allowed(role, "write_collaborative"),
            "publish": allowed(role, "write_publish"),
        }[kind]
        return SessionConnection(
            kind=kind,
            url=f"postgresql://{base}?options={options}",
            sqlalchemy_url=f"postgresql+psycopg://{base}?options={options}",
            read_only=not writable,
            details={
                "host": host,
                "port": port,
                "dbname": db,
                "user": login,
                "password": password,
                "schema": schema,
            },
        )

    def revoke(self, space_id: int, user: str) -> bool:
        login = self.login(space_id, user)
        return self._drop_login(login, space_id) if login else False

    def _drop_login(self, login: str, space_id: int) -> bool:
        with self.engine.begin() as conn:
            self._lock(conn, space_id)
            conn.execute(text(f"DELETE FROM {quote_ident(self.registry)}.logins WHERE login = :n"), {"n": login})
            oid = conn.scalar(text("SELECT oid FROM pg_roles WHERE rolname = :n"), {"n": login})
            if oid is None:
                return False
            ql = quote_ident(login)
            conn.exec_driver_sql(f"ALTER ROLE {ql} NOLOGIN")
            # open connections would keep working after the role is gone
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE usesysid = :oid AND pid <> pg_backend_pid()"
                ),
                {"oid": oid},
            )
            # anything it owns despite NOINHERIT goes to its group, never to the bin
            group = next(
                (
                    name
                    for (name,) in conn.execute(
                        text(
                            "SELECT g.rolname FROM pg_auth_members m "
                            "JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = :oid "
                            "AND starts_with(g.rolname, :p)"
                        ),
                        {"oid": oid, "p": f"{self.prefix}s{int(space_id)}_"},
                    )
                ),
                None,
            )
            if group:
                conn.exec_driver_sql(f"REASSIGN OWNED BY {ql} TO {quote_ident(group)}")
            self._lock_shared(conn)  # DROP OWNED takes back its CONNECT on the database
            conn.exec_driver_sql(f"DROP OWNED BY {ql}")
            conn.exec_driver_sql(f"DROP ROLE {ql}")
        return True

    def issued(self) -> list[Issued]:
        self._ensure_registry()
        with self.engine.connect() as conn:
            return [
                Issued(space_id, user, role, login)
                for login, space_id, user, role in conn.execute(
                    text(
                        f"SELECT login, space_id, user_name, role FROM {quote_ident(self.registry)}.logins "
                        "ORDER BY space_id, user_name"
                    )
                )
            ]

    def exists(self, space_id: int) -> bool:
        with self.engine.connect() as conn:
            return self._schema_exists(conn, schema_name(space_id, "collaborative"))

    def _purge(self, space_id: int) -> None:
        self._ensure_registry()
        for item in self.issued():
            if item.space_id == space_id:
                self._drop_login(item.login, space_id)
        with self.engine.begin() as conn:
            self._lock(conn, space_id)
            for kind in SCHEMA_KINDS:
                conn.exec_driver_sql(
                    f"DROP SCHEMA IF EXISTS {quote_ident(schema_name(space_id, kind))} CASCADE"
                )
            conn.execute(
                text(f"DELETE FROM {quote_ident(self.registry)}.spaces WHERE space_id = :s"), {"s": space_id}
            )
            self._lock_shared(conn)
            for role in Role:
                name = self.group(space_id, role)
                if self._role_exists(conn, name):
                    conn.exec_driver_sql(f"DROP OWNED BY {quote_ident(name)}")
                    conn.exec_driver_sql(f"DROP ROLE {quote_ident(name)}")

    # -- publishing --------------------------------------------------------

    @contextmanager
    def publish_reader(self, space_id: int, role: Role):
        """Read the Publish schema as a short-lived login of the member's group.

        ``SET ROLE`` on the administrator's connection would not do: code a member
        defined could ``RESET ROLE`` back to the administrator. So the reader logs in
        as a role of its own (``NOINHERIT``, one connection, expiring in minutes) whose
        only right is to become the group, in a read-only transaction whose
        ``search_path`` reaches nothing a member can create; the login is dropped
        afterwards like a member's.
        """
        group = self.group(space_id, role)
        schema = schema_name(space_id, "publish")
        readers = f"{self.prefix}s{int(space_id)}_r_"
        login = f"{readers}{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(24)
        with self.engine.connect() as conn:
            # readers left by a service killed mid-publish: long expired, dropped now
            stale = conn.scalars(
                text("SELECT rolname FROM pg_roles WHERE starts_with(rolname, :p) "
                     "AND rolvaliduntil < now()"),
                {"p": readers},
            ).all()
        for name in stale:
            self._drop_login(name, space_id)
        with self.engine.begin() as conn:
            self._lock(conn, space_id)
            if not (self._role_exists(conn, group) and self._schema_exists(conn, schema)):
                raise PublishError(
                    404,
                    f"space {space_id} has no Publish database yet: activate the space, "
                    "write the table there, then publish it",
                    {"table": "no Publish database"},
                )
            db = quote_ident(conn.scalar(text("SELECT current_database()")))
            ql = quote_ident(login)
            expires = conn.scalar(text("SELECT (now() + interval '15 minutes')::text"))
            conn.exec_driver_sql(
                f"CREATE ROLE {ql} WITH LOGIN NOINHERIT CONNECTION LIMIT 1 "
                f"VALID UNTIL {quote_literal(expires)} PASSWORD {quote_literal(password)}"
            )
            comment = {"spaces": "reader", "space_id": space_id, "role": Role(role).value}
            conn.exec_driver_sql(f"COMMENT ON ROLE {ql} IS {quote_literal(json.dumps(comment))}")
            conn.exec_driver_sql(f"GRANT {quote_ident(group)} TO {ql}")
            self._lock_shared(conn)
            conn.exec_driver_sql(f"GRANT {quote_ident(self.members_role)} TO {ql}")
            conn.exec_driver_sql(f"GRANT CONNECT ON DATABASE {db} TO {ql}")
        engine = create_engine(self.admin.set(username=login, password=password), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                # the first statement of the transaction: nothing in it may write
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                conn.exec_driver_sql(f"SET LOCAL ROLE {quote_ident(group)}")
                conn.exec_driver_sql("SET LOCAL search_path = pg_catalog, pg_temp")
                yield conn, schema
                conn.rollback()
        finally:
            engine.dispose()
            self._drop_login(login, space_id)

    def publish_table_kind(self, conn, schema, table) -> str | None:
        rows = conn.execute(_PUBLISH_TABLE, {"schema": schema, "table": table}).all()
        if not rows:
            return None
        root = next(r for r in rows if r.root)
        if root.relkind not in ("r", "p"):
            return RELKINDS.get(root.relkind, "relation that is not a table")
        for r in rows:
            if r.relkind not in ("r", "p"):
                return f"table with a part that is a {RELKINDS.get(r.relkind, 'not a table')}"
            if r.relrowsecurity:
                return "table with row-level security"
            if r.relhasrules:
                return "table with rules"
            if r.computed:
                return "table with columns computed when read"
        return "table"
