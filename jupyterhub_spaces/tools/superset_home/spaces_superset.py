"""Runs inside Superset's own virtualenv, imported by the generated superset_config.py.

This file must only use the standard library and what Superset itself installs:
jupyterhub-spaces is not installed in that virtualenv (Superset pins SQLAlchemy < 2).

It holds these things:

- :class:`ProxyUserMiddleware` turns the user name that jupyter-server-proxy sets into
  ``REMOTE_USER``, but only when the request also carries the session's proxy token,
  a random secret that only the session's Jupyter server knows. Whatever a browser
  sends in these headers is overwritten by the proxy, and a request that reaches
  Superset another way carries no valid token, so it gets no user at all.
- :class:`SpacesSecurityManager`: remote-user authentication without Superset's own
  login views.
- :func:`prepare_app` (``FLASK_APP_MUTATOR``) brings the metadata database to the
  current schema; :class:`SpacesAppInitializer` then keeps the two spaces roles
  (Workbench may export, Sandbox may not), gives the session's user exactly the role of
  their mode, and registers the space's databases, so the app comes up ready to use in
  one start, without separate ``superset db upgrade`` / ``init`` runs.
- :func:`refuse_data_out` (sandbox sessions): every route that hands data out as a
  file, a stream, an export or an image answers 403, whatever permission Superset
  itself checks on it (``/api/v1/sqllab/export_streaming/`` checks only read on SQL
  Lab, which the Sandbox role needs to run queries).
- :func:`guard_sqlite`: every SQLite connection but Superset's own metadata database
  gets an authorizer that refuses ``ATTACH`` (and ``VACUUM INTO``, which attaches),
  ``DETACH``, ``load_extension`` and every pragma that is not a plain read, so SQL Lab
  on a space's SQLite database reaches no other file.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import shutil
import tempfile
from importlib.metadata import version

from flask import current_app, g, request
from flask_login import current_user, login_user, logout_user
from superset.initialization import SupersetAppInitializer
from superset.security import SupersetSecurityManager

log = logging.getLogger("jupyterhub_spaces.superset")

USER_HEADER = "HTTP_X_SPACES_USER"
TOKEN_HEADER = "HTTP_X_SPACES_PROXY_TOKEN"

WORKBENCH_ROLE = "Spaces Workbench"
SANDBOX_ROLE = "Spaces Sandbox"

# Permissions that move data out of Superset: CSV / Excel / export endpoints, report
# downloads and file uploads. Sandbox users get everything a Workbench user gets except
# these; export from a sandbox must go through the space's governed publish path.
EXPORT_PERMISSION = re.compile(r"export|csv|xlsx|excel|download|upload", re.IGNORECASE)

# Routes that hand data out as a file, a stream, an export or an image, by the name of
# their view function or the fixed part of their path. A route Superset adds later
# under such a name is refused to sandbox sessions without a change here.
DATA_OUT_ROUTE = re.compile(
    r"export|csv|xlsx|excel|download|stream|screenshot|thumbnail|image|png|jpe?g|pdf|zip|file|upload|avatar",
    re.IGNORECASE,
)
# Asked for in a query string or a body, these formats turn a data route into a file.
FILE_FORMATS = {"csv", "xlsx", "xls", "excel"}
FORMAT_KEYS = ("format", "result_format", "response_type", "type")


class ProxyUserMiddleware:
    """WSGI middleware: trust the user header only with the proxy's token."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.token = os.environ.get("SPACES_SUPERSET_PROXY_TOKEN", "")
        self.user = os.environ.get("SPACES_SUPERSET_USER", "")

    def __call__(self, environ, start_response):
        sent_user = environ.pop(USER_HEADER, "")
        sent_token = environ.pop(TOKEN_HEADER, "")
        # Never let REMOTE_USER come from anywhere but this check.
        environ.pop("REMOTE_USER", None)
        environ.pop("HTTP_REMOTE_USER", None)
        if (
            self.token
            and self.user
            and hmac.compare_digest(sent_token.encode(), self.token.encode())
            and sent_user == self.user
        ):
            environ["REMOTE_USER"] = self.user
        return self.wsgi_app(environ, start_response)


class SpacesSecurityManager(SupersetSecurityManager):
    """Remote-user authentication only: no Superset login or registration pages."""

    register_superset_auth_view = False


def _login_proxy_user():
    """Before each request: the user is whoever the proxy says, and nobody else.

    Superset's remote-user view logs a user in only on its login page; logging in here
    makes API calls work on the first request, and logs out a session cookie that does
    not belong to the proxy's user.
    """
    name = request.environ.get("REMOTE_USER")
    if not name:
        if current_user.is_authenticated:
            logout_user()
        return None
    if current_user.is_authenticated and current_user.username == name:
        return None
    sm = current_app.appbuilder.sm
    user = sm.find_user(username=name)
    if user is not None and user.is_active:
        login_user(user)
        # Flask-AppBuilder reads g.user; keep it in step with the login above
        g.user = user
    return None


def moves_data_out(endpoint: str, rule: str) -> bool:
    """Whether the route ``rule`` (served by ``endpoint``) hands data out as a file,
    a stream, an export or an image. Static assets do not."""
    if endpoint in ("static", "appbuilder.static") or endpoint.endswith(".static"):
        return False
    fixed = re.sub(r"<[^>]*>", "", rule)
    return bool(DATA_OUT_ROUTE.search(endpoint.rsplit(".", 1)[-1]) or DATA_OUT_ROUTE.search(fixed))


def _asks_for_a_file() -> bool:
    """The request asks a data route for CSV or Excel (query string, JSON body or the
    ``form_data`` field Superset's download forms post)."""
    values = []
    for key, value in request.args.items(multi=True):
        if value.lower() == "true" and key.lower() in FILE_FORMATS:
            return True
        if key in FORMAT_KEYS:
            values.append(value)
    bodies = [request.get_json(silent=True)]
    if request.form.get("form_data"):
        try:
            bodies.append(json.loads(request.form["form_data"]))
        except ValueError:
            pass
    for body in bodies:
        if isinstance(body, dict):
            values += [body.get(k) for k in FORMAT_KEYS]
    return any(isinstance(v, str) and v.lower() in FILE_FORMATS for v in values)


def refuse_data_out():
    """Before each request of a sandbox session: nothing leaves as a file."""
    rule = request.url_rule
    endpoint = request.endpoint or ""
    if (rule is not None and moves_data_out(endpoint, rule.rule)) or _asks_for_a_file():
        log.warning("spaces: refused %s %s to a sandbox session", request.method, request.path)
        body = json.dumps({
            "message": "This is a Sandbox session: data cannot leave it as a file, an export "
            "or an image. Publish results through the space instead.",
        })
        return current_app.response_class(body, status=403, mimetype="application/json")
    return None


# SQLite authorizer action codes (sqlite3.h): stable across SQLite versions
SQLITE_PRAGMA, SQLITE_ATTACH, SQLITE_DETACH, SQLITE_FUNCTION = 19, 24, 25, 31
# pragmas that take a table or index name and only read
INFO_PRAGMAS = {
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "foreign_key_check",
}
# pragmas that may be read (never set)
READ_PRAGMAS = {
    "database_list", "collation_list", "function_list", "module_list", "pragma_list",
    "compile_options", "encoding", "user_version", "schema_version", "data_version",
    "page_count", "page_size", "freelist_count", "application_id", "foreign_keys",
    "journal_mode", "busy_timeout", "query_only",
}
# pragmas that may also be set: they change only this connection's behaviour
# (SQLAlchemy sets read_uncommitted for its isolation level)
CONNECTION_PRAGMAS = {"read_uncommitted", "busy_timeout"}
REFUSED_FUNCTIONS = {"load_extension"}


def sqlite_authorizer(action, arg1, arg2, _db, _trigger):
    """Refuse what reaches beyond the connection's own file."""
    import sqlite3

    if action in (SQLITE_ATTACH, SQLITE_DETACH):
        log.warning("spaces: refused ATTACH/DETACH of %r on a space's SQLite database", arg1)
        return sqlite3.SQLITE_DENY
    if action == SQLITE_FUNCTION and (arg2 or "").lower() in REFUSED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    if action == SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if name in INFO_PRAGMAS or name in CONNECTION_PRAGMAS or (name in READ_PRAGMAS and arg2 is None):
            return sqlite3.SQLITE_OK
        log.warning("spaces: refused PRAGMA %s on a space's SQLite database", name)
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def guard_sqlite(metadata_db: str) -> None:
    """Install :func:`sqlite_authorizer` on every new SQLite connection of this
    process except those to ``metadata_db`` (Superset's own, which its migrations
    manage with pragmas)."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    own = os.path.realpath(metadata_db)

    @event.listens_for(Engine, "connect")
    def _guard(dbapi_conn, _record):
        if not isinstance(dbapi_conn, sqlite3.Connection):
            return
        files = [row[2] for row in dbapi_conn.execute("PRAGMA database_list")]
        if files and files[0] and os.path.realpath(files[0]) == own:
            return
        if hasattr(dbapi_conn, "enable_load_extension"):
            dbapi_conn.enable_load_extension(False)
        dbapi_conn.set_authorizer(sqlite_authorizer)


def _settings(app) -> dict:
    return app.config["SPACES"]


def _schema_stamp(settings) -> str:
    return settings["metadata_db"] + ".schema"


def _is_current(settings) -> bool:
    """The metadata database is at this Superset version's schema, with its roles."""
    stamp = _schema_stamp(settings)
    if not (os.path.exists(stamp) and os.path.exists(settings["metadata_db"])):
        return False
    with open(stamp) as f:
        return f.read().strip() == version("apache-superset")


def _is_blank(db_path: str) -> bool:
    """No metadata database yet: no file, or one without any migration applied."""
    if not os.path.exists(db_path) or os.path.getsize(db_path) == 0:
        return True
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        found = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()[0]
    return found == 0


def _ensure_schema(settings) -> None:
    """Bring the metadata database to Superset's current schema (before the app reads
    it). A new one is copied from a template made once per Superset version, next to
    its virtualenv, which turns a first start of a minute of migrations into a copy."""
    from flask_migrate import upgrade

    if _is_current(settings):
        return
    db_path = settings["metadata_db"]
    template = settings.get("template_db") or ""
    if _is_blank(db_path) and template and os.path.exists(template):
        log.info("spaces: new metadata database from %s", template)
        # Superset has already opened (and so created) the file: let go of it first
        from superset import db

        db.engine.dispose()
        shutil.copyfile(template, db_path)
        with open(_schema_stamp(settings), "w") as f:
            f.write(version("apache-superset"))
        return
    log.info("spaces: upgrading Superset's metadata database %s", db_path)
    upgrade(directory=os.path.join(os.path.dirname(_superset_file()), "migrations"))


def _ensure_permissions(app, settings) -> None:
    """What ``superset init`` does, once per Superset version: every view's
    permissions and the built-in roles. Needs the views, so it runs after them."""
    from superset import appbuilder, security_manager

    if _is_current(settings):
        return
    appbuilder.add_permissions(update_perms=True)
    security_manager.sync_role_definitions()
    app.extensions["sqlalchemy"].session.commit()
    template = settings.get("template_db") or ""
    if template and not os.path.exists(template):
        _save_template(settings["metadata_db"], template)
    with open(_schema_stamp(settings), "w") as f:
        f.write(version("apache-superset"))


def _superset_file() -> str:
    import superset

    return superset.__file__


def _save_template(db_path: str, template: str) -> None:
    # Write next to the target and rename, so two sessions starting at once never
    # see half a file.
    os.makedirs(os.path.dirname(template), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(template), suffix=".tmp")
    os.close(fd)
    shutil.copyfile(db_path, tmp)
    # sessions of other users copy it too; it holds roles and permissions, no users
    os.chmod(tmp, 0o644)
    os.replace(tmp, template)


def _is_workbench_pvm(sm, pvm) -> bool:
    return (
        sm._is_alpha_pvm(pvm)
        or sm._is_sql_lab_pvm(pvm)
        or (pvm.permission.name == "all_database_access")
    )


def _is_sandbox_pvm(sm, pvm) -> bool:
    if not _is_workbench_pvm(sm, pvm):
        return False
    return not (
        EXPORT_PERMISSION.search(pvm.permission.name)
        or EXPORT_PERMISSION.search(pvm.view_menu.name)
    )


def _ensure_roles(sm) -> None:
    pvms = sm._get_all_pvms()
    sm.set_role(WORKBENCH_ROLE, lambda pvm: _is_workbench_pvm(sm, pvm), pvms)
    sm.set_role(SANDBOX_ROLE, lambda pvm: _is_sandbox_pvm(sm, pvm), pvms)


def _ensure_user(sm, settings) -> None:
    """The session's user exists and has exactly the role of the current mode.

    The mode can change between two activations (a subscription expired), so the role
    is set at every start, never only when the user is created.
    """
    name = settings["user"]
    role = sm.find_role(SANDBOX_ROLE if settings["mode"] == "sandbox" else WORKBENCH_ROLE)
    user = sm.find_user(username=name)
    if user is None:
        sm.add_user(name, name, "(JupyterHub)", f"{name}@spaces.invalid", role)
    else:
        user.roles = [role]
        user.active = True
        sm.update_user(user)


def _register_databases(app, settings) -> dict:
    """Register the space's databases (what ``superset set-database-uri`` does) and
    return their Superset ids by kind."""
    from superset.utils.database import get_or_create_db

    session = app.extensions["sqlalchemy"].session
    ids = {}
    sandbox = settings["mode"] == "sandbox"
    for entry in settings["databases"]:
        database = get_or_create_db(entry["name"], entry["url"])
        database.expose_in_sqllab = True
        # The Asset database is read-only data; the others are the space's to write.
        database.allow_dml = entry["kind"] != "asset"
        database.allow_run_async = False
        database.allow_file_upload = not sandbox and entry["kind"] != "asset"
        session.commit()
        ids[entry["kind"]] = database.id
    return ids


def prepare_app(app) -> None:
    """``FLASK_APP_MUTATOR``: runs before Superset reads its metadata database."""
    _ensure_schema(_settings(app))


class SpacesAppInitializer(SupersetAppInitializer):
    """Superset's initializer, then this session's roles, user and databases."""

    def init_app_in_ctx(self) -> None:
        super().init_app_in_ctx()
        finish_app(self.superset_app)


def finish_app(app) -> None:
    """Make roles, user and databases match this session, then trust only the proxy's
    user on every request."""
    from superset import security_manager as sm

    settings = _settings(app)
    _ensure_permissions(app, settings)
    _ensure_roles(sm)
    _ensure_user(sm, settings)
    ids = _register_databases(app, settings)
    app.extensions["sqlalchemy"].session.commit()
    state_file = settings["state_file"]
    tmp = state_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"databases": ids}, f)
    os.replace(tmp, state_file)
    # First of all before-request hooks: Flask-AppBuilder's own hook copies the
    # current user into g.user, and must see the proxy's user.
    hooks = app.before_request_funcs.setdefault(None, [])
    hooks.insert(0, _login_proxy_user)
    if settings["mode"] == "sandbox":
        hooks.insert(1, refuse_data_out)
