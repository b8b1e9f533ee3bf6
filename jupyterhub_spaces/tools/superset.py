"""Superset for one session: its settings, ``superset_config.py`` and command (pure).

Superset runs from its own virtualenv (see :func:`.catalog.superset_venv`), under the
session's URL prefix (``<server url>superset``), on a unix socket only the session's
Jupyter server reaches. It trusts exactly one user, the session's, and only when the
request carries the proxy token (see ``superset_home/spaces_superset.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from .catalog import cache_dir, superset_venv

#: Kinds of space databases, the env vars that carry their URLs, and
#: the name each gets in Superset.
DATABASES = (
    ("asset", "SPACES_ASSET_DB_URL", "Space assets"),
    ("collaborative", "SPACES_COLLABORATIVE_DB_URL", "Space collaborative"),
    ("publish", "SPACES_PUBLISH_DB_URL", "Space publish"),
)

#: The folder holding the module the generated config imports.
HOME_MODULE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "superset_home")


@dataclass(frozen=True)
class SupersetSetup:
    """Everything that differs between two sessions' Superset."""

    #: the JupyterHub user Superset trusts
    user: str
    #: "workbench" or "sandbox"
    mode: str
    #: URL path Superset is served under, no trailing slash (``/user/a/s/superset``)
    app_root: str
    #: persistent folder for its metadata database, secret key and config
    home: str
    #: Superset's virtualenv
    venv: str
    #: ``[{"kind", "name", "url"}]``: the space's databases to register
    databases: tuple = ()
    #: metadata database copied into new sessions (made once per Superset version)
    template_db: str = ""
    workers: int = 1
    threads: int = 4

    @property
    def config_path(self) -> str:
        return os.path.join(self.home, "superset_config.py")

    @property
    def metadata_db(self) -> str:
        return os.path.join(self.home, "superset.db")

    @property
    def secret_key_path(self) -> str:
        return os.path.join(self.home, "secret_key")

    @property
    def pid_file(self) -> str:
        return os.path.join(self.home, "superset.pid")

    @property
    def state_file(self) -> str:
        """Written by Superset once started: the ids of the registered databases."""
        return os.path.join(self.home, "spaces-state.json")


def superset_driver_url(url: str) -> str:
    """The same database as a URL Superset's environment can open.

    The spaces use psycopg 3 (``postgresql+psycopg``); Superset's virtualenv has
    psycopg2, which reads the same URLs.
    """
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def space_databases(env: Mapping[str, str], databases_json: str = "") -> tuple[dict, ...]:
    """The space's databases from ``SPACES_*_DB_URL``, else from ``databases.json``
    (the session's credentials file, ``SPACES_DATABASES_FILE``).

    Its ``databases`` member (or the whole file) maps a kind to a URL or to an object
    with a ``url`` (or ``sqlalchemy_url``) member.
    """
    from_file: dict = {}
    if databases_json and os.path.exists(databases_json):
        with open(databases_json) as f:
            loaded = json.load(f)
        if isinstance(loaded, dict):
            from_file = (
                loaded.get("databases", loaded)
                if isinstance(loaded.get("databases"), dict)
                else loaded
            )
    found = []
    for kind, var, name in DATABASES:
        url = env.get(var, "")
        if not url:
            entry = from_file.get(kind)
            if isinstance(entry, dict):
                url = entry.get("url") or entry.get("sqlalchemy_url") or ""
            elif isinstance(entry, str):
                url = entry
        if url:
            found.append({"kind": kind, "name": name, "url": superset_driver_url(url)})
    return tuple(found)


def make_setup(env: Mapping[str, str], base_url: str) -> SupersetSetup:
    """Gather a session's Superset settings from its environment and URL prefix."""
    home_dir = env.get("HOME") or os.path.expanduser("~")
    spaces_dir = os.path.join(home_dir, ".spaces")
    home = env.get("SPACES_SUPERSET_HOME") or os.path.join(spaces_dir, "superset")
    venv = superset_venv(env)
    mode = "sandbox" if env.get("SPACES_MODE", "").lower() == "sandbox" else "workbench"
    return SupersetSetup(
        user=env.get("JUPYTERHUB_USER") or env.get("USER") or "jovyan",
        mode=mode,
        app_root=base_url.rstrip("/") + "/superset",
        home=home,
        venv=venv,
        databases=space_databases(
            env, env.get("SPACES_DATABASES_FILE") or os.path.join(spaces_dir, "databases.json")
        ),
        template_db=(
            os.path.join(cache_dir(env), "superset-metadata-template.db")
            if not env.get("SPACES_SUPERSET_TEMPLATE_DB")
            else env["SPACES_SUPERSET_TEMPLATE_DB"]
        ),
        workers=int(env.get("SPACES_SUPERSET_WORKERS") or 1),
    )


def make_superset_config(setup: SupersetSetup) -> str:
    """The text of ``superset_config.py`` for ``setup``; values are Python literals."""

    def lit(value) -> str:
        return json.dumps(value)

    spaces = {
        "user": setup.user,
        "mode": setup.mode,
        "metadata_db": setup.metadata_db,
        "template_db": setup.template_db,
        "state_file": setup.state_file,
        "databases": list(setup.databases),
    }
    has_sqlite = any(d["url"].startswith("sqlite") for d in setup.databases)
    lines = [
        "# Superset settings for one jupyterhub-spaces session; rewritten at every start.",
        "import sys",
        f"sys.path.insert(0, {lit(HOME_MODULE_DIR)})",
        "from flask_appbuilder.security.manager import AUTH_REMOTE_USER",
        "from spaces_superset import (",
        "    ProxyUserMiddleware, SpacesAppInitializer, SpacesSecurityManager, guard_sqlite,",
        "    prepare_app,",
        ")",
        "",
        f"with open({lit(setup.secret_key_path)}) as _f:",
        "    SECRET_KEY = _f.read().strip()",
        f"SQLALCHEMY_DATABASE_URI = {lit('sqlite:///' + setup.metadata_db)}",
        "",
        "# Only the user the session's proxy names, and no login pages of Superset's own.",
        "AUTH_TYPE = AUTH_REMOTE_USER",
        "AUTH_USER_REGISTRATION = False",
        "CUSTOM_SECURITY_MANAGER = SpacesSecurityManager",
        "ADDITIONAL_MIDDLEWARE = [ProxyUserMiddleware]",
        'RECAPTCHA_PUBLIC_KEY = ""',
        "FLASK_APP_MUTATOR = prepare_app",
        "APP_INITIALIZER = SpacesAppInitializer",
        f"SPACES = {spaces!r}",
        "# SQL Lab on a space's SQLite database reaches no other file (no ATTACH,",
        "# no extensions, read-only pragmas): Superset's own database excepted.",
        "guard_sqlite(SPACES['metadata_db'])",
        "",
        "# Served under the session's prefix; the cookie stays inside it so two sessions",
        "# of the same browser do not overwrite each other's.",
        f"APP_ICON = {lit(setup.app_root + '/static/assets/images/superset-logo-horiz.png')}",
        f"SESSION_COOKIE_PATH = {lit(setup.app_root + '/')}",
        'SESSION_COOKIE_NAME = "spaces_superset_session"',
        "",
        "# Superset's own data (uploads, caches) lives with the session, not in the image.",
        f"DATA_DIR = {lit(setup.home)}",
        f"UPLOAD_FOLDER = {lit(os.path.join(setup.home, 'uploads') + '/')}",
        "SQLLAB_CTAS_NO_LIMIT = False",
        "SUPERSET_WEBSERVER_TIMEOUT = 300",
    ]
    if has_sqlite:
        lines += [
            "",
            "# The embedded default keeps the space's databases in SQLite files, which",
            "# Superset refuses unless told they are intended.",
            "PREVENT_UNSAFE_DB_CONNECTIONS = False",
        ]
    return "\n".join(lines) + "\n"


def gunicorn_command(setup: SupersetSetup, socket_path: str) -> list[str]:
    """Superset's web server on ``socket_path``."""
    return [
        os.path.join(setup.venv, "bin", "gunicorn"),
        "--bind",
        f"unix:{socket_path}",
        "--workers",
        str(setup.workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(setup.threads),
        # the first start of a session may migrate its metadata database
        "--timeout",
        "300",
        "--limit-request-line",
        "0",
        "--limit-request-field_size",
        "0",
        "--access-logfile",
        "-",
        "--pid",
        setup.pid_file,
        "superset.app:create_app()",
    ]


def superset_env(
    setup: SupersetSetup, proxy_token: str, base_env: Mapping[str, str]
) -> dict[str, str]:
    """The environment Superset runs with: its own virtualenv first, none of ours."""
    env = {
        k: v for k, v in base_env.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env.update(
        {
            "PATH": os.path.join(setup.venv, "bin") + os.pathsep + base_env.get("PATH", os.defpath),
            "VIRTUAL_ENV": setup.venv,
            "SUPERSET_CONFIG_PATH": setup.config_path,
            "SUPERSET_APP_ROOT": setup.app_root,
            "SUPERSET_HOME": setup.home,
            "SPACES_SUPERSET_PROXY_TOKEN": proxy_token,
            "SPACES_SUPERSET_USER": setup.user,
            "FLASK_APP": "superset.app:create_app()",
        }
    )
    return env
