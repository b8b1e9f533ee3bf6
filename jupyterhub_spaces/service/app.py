"""The spaces service: a JupyterHub managed service serving the Spaces JSON API (and
the Spaces web app) under ``/services/spaces/``.

Run by the hub as ``jupyterhub-spaces-service --config=spaces_config.py``; it listens
on the address the hub gives it in ``$JUPYTERHUB_SERVICE_URL`` and reads the same
``c.SpacesSettings`` as the hub, so a site sets each value once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import importlib
import os
import signal
from concurrent.futures import ThreadPoolExecutor
import sys
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpserver import HTTPServer
from traitlets import Bool, Integer, List, Unicode, default
from traitlets.config import Application

from .. import __version__, demo
from ..databases import DatabaseBackend, SpaceDatabases, backend
from ..databases.lifecycle import Reconciler
from ..hubapi import HubAPI
from ..settings import SpacesSettings
from ..store import DatabaseRevisionError, Store
from ..tasks.config import SpacesTasks
from ..tasks.engine import AirflowClient
from .answers import AnswerCache
from .base import NotFoundHandler
from .guard import ExpiryTimer, SessionGuard
from .inputs import MAX_BODY_BYTES
from .handlers import MODULES
from .metrics import Metrics


class SpacesService(Application):
    """The JupyterHub managed service of jupyterhub-spaces."""

    name = "jupyterhub-spaces-service"
    version = __version__
    description = __doc__

    classes = [SpacesSettings, SpacesTasks, HubOAuth]

    aliases = {
        "config": "SpacesService.config_file",
        "url": "SpacesService.url",
        "db-url": "SpacesSettings.db_url",
        "log-level": "Application.log_level",
    }
    flags = {
        "generate-config": (
            {"SpacesService": {"generate_config": True}},
            "write a config file with every setting and its help, then exit",
        ),
        "debug": ({"Application": {"log_level": 10}}, "log debug messages"),
    }

    # a broken config file stops the service (traitlets only logs it by default)
    raise_config_file_errors = Bool(True, help="Stop when a config file fails to load.")

    config_file = Unicode(
        "spaces_config.py",
        help="The config file to load (the same file the hub reads for c.SpacesSettings).",
    ).tag(config=True)

    generate_config = Bool(
        False, help="Write config_file with every setting commented out, then exit."
    ).tag(config=True)

    url = Unicode(
        help="The URL to listen on (default: $JUPYTERHUB_SERVICE_URL, set by the hub for "
        "a managed service; else http://127.0.0.1:10101).",
    ).tag(config=True)

    service_prefix = Unicode(
        help="The URL path the hub's proxy routes to this service "
        "(default: $JUPYTERHUB_SERVICE_PREFIX, else /services/<service_name>/).",
    ).tag(config=True)

    handler_modules = List(
        Unicode(),
        help="Modules whose default_handlers the service serves "
        "(default: every module in jupyterhub_spaces.service.handlers.MODULES).",
    ).tag(config=True)

    default_page_size = Integer(
        50, help="How many items a list endpoint returns when the caller gives no ?limit=."
    ).tag(config=True)

    max_page_size = Integer(
        500, help="The largest ?limit= a list endpoint accepts."
    ).tag(config=True)

    db_threads = Integer(
        8,
        help="Threads that run the database work of the busiest read endpoints, so the "
        "event loop serves other requests while one waits on the database.",
        min=1,
    ).tag(config=True)

    _db_executor = None

    @property
    def db_executor(self) -> ThreadPoolExecutor:
        if self._db_executor is None:
            self._db_executor = ThreadPoolExecutor(self.db_threads, thread_name_prefix="spaces-db")
        return self._db_executor

    @default("url")
    def _default_url(self):
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")

    @default("handler_modules")
    def _default_handler_modules(self):
        return list(MODULES)

    @default("service_prefix")
    def _default_prefix(self):
        return os.environ.get(
            "JUPYTERHUB_SERVICE_PREFIX", f"/services/{self.spaces_settings.service_name}/"
        )

    # built in initialize()
    spaces_settings: SpacesSettings
    store: Store | None = None
    databases: DatabaseBackend
    database_config: SpaceDatabases
    hub_auth: HubOAuth

    def initialize(self, argv=None):
        super().initialize(argv)
        # tornado's and the handlers' messages go to the application's log
        for name in ("tornado.access", "tornado.application", "tornado.general", "jupyterhub_spaces"):
            logger = logging.getLogger(name)
            logger.parent = self.log
            logger.setLevel(self.log.level)
        if self.generate_config:
            return
        if self.config_file and os.path.exists(self.config_file):
            try:
                self.load_config_file(self.config_file)
            except Exception:
                # never serve on defaults (a SQLite catalog of its own) when the
                # site's settings could not be read
                self.log.critical(
                    "could not load the config file %s: the service does not start "
                    "without its settings", self.config_file, exc_info=True,
                )
                self.exit(1)
            # the command line wins over the file
            self.update_config(self.cli_config)
        elif self.config_file and "config_file" in self.cli_config.get("SpacesService", {}):
            self.log.critical("config file %s does not exist", self.config_file)
            self.exit(1)
        self.spaces_settings = SpacesSettings(parent=self)
        try:
            self.store = Store(self.spaces_settings.db_url)
        except DatabaseRevisionError as e:
            self.log.critical("%s", e)
            self.exit(1)
        self.database_config = SpaceDatabases(parent=self)
        self.tasks_config = SpacesTasks(parent=self)
        if not self.tasks_config.run_root:
            self.tasks_config.run_root = os.path.abspath("task-runs")
        os.makedirs(self.tasks_config.run_root, mode=0o700, exist_ok=True)
        self.databases = backend(self.spaces_settings, self.database_config)
        # HubOAuth reads the hub's URL, the service token and the OAuth client from
        # the environment the hub gives a managed service
        # (the singleton: jupyterhub's OAuth callback handler looks it up itself)
        self.hub_auth = HubOAuth.instance(parent=self, cache_max_age=60)

    def handlers(self) -> list[tuple]:
        """Every route of the service, with the service prefix applied."""
        routes: list[tuple] = []
        for module_name in self.handler_modules:
            module = importlib.import_module(module_name)
            for pattern, handler, *rest in module.default_handlers:
                routes.append((url_path_join(self.service_prefix, pattern), handler, *rest))
        routes.append(
            (url_path_join(self.service_prefix, "oauth_callback"), HubOAuthCallbackHandler)
        )
        return routes

    def make_app(self) -> web.Application:
        hub = HubAPI()
        return web.Application(
            self.handlers(),
            spaces_hubapi=hub,
            session_guard=SessionGuard(self.store, hub, self.spaces_settings.lineage_enforced, self.databases),
            default_handler_class=NotFoundHandler,
            cookie_secret=self._cookie_secret(),
            hub_auth=self.hub_auth,
            store=self.store,
            spaces_answers=AnswerCache(),
            databases=self.databases,
            spaces_settings=self.spaces_settings,
            tasks_config=self.tasks_config,
            engine=AirflowClient(
                self.tasks_config.engine_url,
                self.tasks_config.engine_user,
                self.tasks_config.engine_password_file,
            ),
            service=self,
            static_url_prefix=url_path_join(self.service_prefix, "static/"),
            log_function=self._log_request,
            metrics=Metrics(self.store),
        )

    def _cookie_secret(self) -> bytes:
        # derived from the service's own hub token, so browser logins survive a
        # restart of the service; random when run without a hub
        token = self.hub_auth.api_token
        if not token:
            return os.urandom(32)
        return hashlib.sha256(b"jupyterhub-spaces cookie secret\0" + token.encode()).digest()

    def _log_request(self, handler):
        metrics = handler.settings.get("metrics")
        if metrics is not None:
            metrics.observe_request(handler)
        status = handler.get_status()
        level = self.log.info if status < 400 else self.log.warning
        if status < 300 and handler.request.method == "GET":
            level = self.log.debug
        user = getattr(handler, "user_name", "") or "-"
        level(
            "%d %s %s (%s) %.1fms",
            status,
            handler.request.method,
            handler.request.uri,
            user,
            1000 * handler.request.request_time(),
        )

    def write_config_file(self):
        text = self.generate_config_file()
        if os.path.exists(self.config_file):
            self.log.critical("%s exists: not overwriting it", self.config_file)
            self.exit(1)
        with open(self.config_file, "w") as f:
            f.write(text)
        print(f"wrote {self.config_file}")

    async def serve(self) -> None:
        app = self.make_app()
        parsed = urlparse(self.url)
        # tornado reads a whole body before a handler sees it: past a few times the
        # largest body the API reads (a JSON 413), the connection itself is refused
        server = HTTPServer(app, xheaders=True, max_body_size=8 * MAX_BODY_BYTES)
        server.listen(parsed.port or 80, parsed.hostname or "127.0.0.1")
        self.log.info(
            "spaces service %s listening on %s, prefix %s, database %s",
            __version__,
            self.url,
            self.service_prefix,
            _redact(self.spaces_settings.db_url),
        )
        # revoke database logins the catalog no longer allows, sweep broken publishes
        reconciler = Reconciler(
            self.store,
            self.databases,
            self.spaces_settings,
            self.database_config.reconcile_interval,
            self.database_config.snapshot_prefix,
        )
        reconciler.start()
        guard = asyncio.ensure_future(
            _every(self.database_config.reconcile_interval, app.settings["session_guard"].run_safely)
        )
        # an expiry comes without a request: act on it at its time
        expiries = ExpiryTimer(app.settings["session_guard"])
        expiries.start()
        # the demo's task shows a finished run from the start (nothing to do elsewhere)
        first_runs = asyncio.ensure_future(demo.first_runs(self.store, app.settings["engine"]))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        reconciler.stop()
        guard.cancel()
        first_runs.cancel()
        expiries.stop()
        server.stop()
        self.store.dispose()

    def start(self):
        if self.generate_config:
            self.write_config_file()
            return
        asyncio.run(self.serve())


async def _every(seconds: float, job) -> None:
    """Run ``job`` every ``seconds`` (never when ``seconds`` is 0)."""
    while seconds > 0:
        await asyncio.sleep(seconds)
        await job()


def _redact(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def main(argv=None):
    SpacesService.launch_instance(argv)


if __name__ == "__main__":
    sys.exit(main())
