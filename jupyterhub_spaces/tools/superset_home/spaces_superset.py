"""Runs inside Superset's own virtualenv, imported by the generated superset_config.py.

This file must only use the standard library and what Superset itself installs:
jupyterhub-spaces is not installed in that virtualenv (Superset pins SQLAlchemy < 2).

It holds three things:

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
    app.before_request_funcs.setdefault(None, []).insert(0, _login_proxy_user)
