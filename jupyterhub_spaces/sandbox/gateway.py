"""The Sandbox gateway: the process JupyterHub starts as a sandbox session's server.

It serves exactly three things under the server's URL prefix: the Guacamole client
page (with guacamole-common-js), the WebSocket tunnel to guacd, and the OAuth callback
of the hub login. Only the server's owner gets them (JupyterHub OAuth, as a
single-user server does). Behind the tunnel runs the session's desktop
(:mod:`.desktop`); JupyterLab runs there on the loopback, so the user's browser has no
route to it.

Run as ``python -m jupyterhub_spaces.sandbox.gateway`` with the environment JupyterHub
gives a spawned server (``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_SERVICE_PREFIX``,
``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_USER``, ``JUPYTERHUB_OAUTH_*``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from datetime import datetime, timezone
from importlib import resources
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated, UserNotAllowed
from jupyterhub.utils import url_path_join
from tornado import httpclient, httpserver, ioloop, web
from traitlets import Bool, Integer, Unicode, default
from traitlets.config import Application

from .config import SandboxSettings
from .desktop import Desktop, DesktopError
from .rules import SandboxRules, VncTarget
from .tunnel import TunnelHandler, TunnelTarget

STATIC_DIR = str(resources.files(__package__) / "static")
VENDOR_FILE = os.path.join(STATIC_DIR, "vendor", "guacamole-common.js")


class OwnerOnly(HubOAuthenticated):
    """JupyterHub OAuth, and then only the user who owns this server."""

    def check_hub_user(self, model):
        model = super().check_hub_user(model)
        owner = self.settings["sandbox_owner"]
        if not model or model.get("kind") != "user" or model.get("name") != owner:
            raise UserNotAllowed(model)
        return model


class PageHandler(OwnerOnly, web.RequestHandler):
    """The Guacamole client page (any path under the prefix shows it)."""

    @web.authenticated
    def get(self, path=""):
        prefix = self.settings["sandbox_prefix"]
        self.set_header("Cache-Control", "no-store")
        self.set_header(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            "connect-src 'self'; frame-ancestors 'self'",
        )
        self.render(
            "page.html",
            prefix=prefix,
            tunnel_url=url_path_join(prefix, "tunnel"),
            space=self.settings["sandbox_space"],
            user=self.current_user["name"],
            paste_allowed=self.settings["sandbox_rules"].allow_paste,
        )


class StaticHandler(OwnerOnly, web.StaticFileHandler):
    """The client's scripts, for the owner only."""

    @web.authenticated
    def get(self, path, include_body=True):
        return super().get(path, include_body)


class OwnerTunnelHandler(OwnerOnly, TunnelHandler):
    """The tunnel, for the owner only (no redirect: a WebSocket cannot follow one)."""

    def authorize(self):
        if self.get_current_user() is None:
            raise web.HTTPError(403, "only the owner of this sandbox may connect")


class ApiStatusHandler(web.RequestHandler):
    """Minimal ``api`` answer so the hub and tools see a live server."""

    def get(self):
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"sandbox": True}))


class SandboxGateway(Application):
    """Serve a sandbox desktop to its owner through Guacamole."""

    name = "jupyterhub-spaces-sandbox"
    description = __doc__
    classes = [SandboxSettings]

    aliases = {
        "ip": "SandboxGateway.ip",
        "port": "SandboxGateway.port",
        "notebook-dir": "SandboxGateway.home",
        "space": "SandboxGateway.space",
    }
    flags = {
        "debug": ({"Application": {"log_level": 10}}, "Log more."),
        "no-desktop": (
            {"SandboxGateway": {"desktop": False}},
            "Do not start a desktop; connect guacd to the VNC server given by --vnc-* (tests).",
        ),
    }

    ip = Unicode("127.0.0.1", help="Address the gateway listens on.").tag(config=True)

    port = Integer(0, help="Port the gateway listens on (default: from JUPYTERHUB_SERVICE_URL).").tag(config=True)

    home = Unicode(help="The session's working directory, where JupyterLab starts.").tag(config=True)

    space = Unicode("", help="Display name of the space, shown on the page.").tag(config=True)

    recording_name = Unicode(
        "", help="Name of the session's recording file (when recording is on)."
    ).tag(config=True)

    desktop = Bool(True, help="Start the desktop (guacd, Xvnc, window manager, JupyterLab).").tag(config=True)

    activity_interval = Integer(
        60,
        help="Seconds between reports of user activity to the hub (so idle culling "
        "sees a desktop in use as active).",
    ).tag(config=True)

    vnc_host = Unicode("127.0.0.1", help="VNC server when the desktop is not started here.").tag(config=True)
    vnc_port = Integer(5900, help="VNC port when the desktop is not started here.").tag(config=True)
    vnc_password = Unicode("", help="VNC password when the desktop is not started here.").tag(config=True)

    @default("home")
    def _default_home(self):
        return os.getcwd()

    @default("port")
    def _default_port(self):
        url = os.environ.get("JUPYTERHUB_SERVICE_URL", "")
        return urlparse(url).port or 8888 if url else 8888

    def sandbox_settings(self) -> SandboxSettings:
        return SandboxSettings(parent=self)

    _last_input: float = 0.0

    def _on_input(self):
        self._last_input = time.time()

    async def report_activity(self):
        """Tell the hub when the owner last used the desktop, as single-user servers do."""
        url = os.environ.get("JUPYTERHUB_ACTIVITY_URL")
        token = os.environ.get("JUPYTERHUB_API_TOKEN")
        if not url or not token:
            return
        server = os.environ.get("JUPYTERHUB_SERVER_NAME", "")
        client = httpclient.AsyncHTTPClient()
        reported = 0.0
        while True:
            await asyncio.sleep(self.activity_interval)
            if self._last_input <= reported:
                continue
            when = datetime.fromtimestamp(self._last_input, timezone.utc).isoformat().replace("+00:00", "Z")
            body = {"last_activity": when, "servers": {server: {"last_activity": when}}}
            try:
                await client.fetch(
                    url, method="POST", body=json.dumps(body),
                    headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
                )
                reported = self._last_input
            except Exception as e:  # the hub may be restarting: try again next time
                self.log.warning("could not report activity to the hub: %s", e)

    def make_app(self, target_getter, rules: SandboxRules) -> web.Application:
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
        owner = os.environ.get("JUPYTERHUB_USER", "")
        if not owner or not os.environ.get("JUPYTERHUB_API_TOKEN"):
            raise SystemExit(
                "the sandbox gateway must be started by JupyterHub: JUPYTERHUB_USER and "
                "JUPYTERHUB_API_TOKEN are not set"
            )
        if not os.path.exists(VENDOR_FILE):
            self.log.error(
                "The Guacamole client is missing (%s): run jupyterhub_spaces/sandbox/client/build.sh "
                "(make demo does); the page cannot show the desktop without it",
                VENDOR_FILE,
            )
        hub_auth = HubOAuth(parent=self, cache_max_age=60)
        p = prefix.rstrip("/")
        handlers = [
            (rf"{p}/oauth_callback", HubOAuthCallbackHandler),
            (rf"{p}/tunnel", OwnerTunnelHandler),
            (rf"{p}/api/?", ApiStatusHandler),
            (rf"{p}/static/(.*)", StaticHandler, {"path": STATIC_DIR}),
            (rf"{p}/(.*)", PageHandler),
        ]
        return web.Application(
            handlers,
            hub_auth=hub_auth,
            cookie_secret=os.urandom(32),
            template_path=str(resources.files(__package__) / "templates"),
            sandbox_target=target_getter,
            sandbox_owner=owner,
            sandbox_prefix=prefix,
            sandbox_space=self.space or os.environ.get("JUPYTERHUB_SERVER_NAME", ""),
            sandbox_rules=rules,
            sandbox_on_input=self._on_input,
            websocket_max_message_size=64 * 1024,
            xsrf_cookies=False,
        )

    async def run(self):
        settings = self.sandbox_settings()
        rules = SandboxRules(
            allow_paste=settings.allow_paste,
            recording_path=settings.recording_path,
            recording_name=self.recording_name,
        )
        desktop = None
        if self.desktop:
            desktop = Desktop(settings, home=self.home, name=self.space or "sandbox")
            try:
                await desktop.start(dict(os.environ))
            except DesktopError as e:
                await desktop.stop()
                self.log.error("The sandbox desktop could not start: %s", e)
                raise SystemExit(1)
            vnc = desktop.vnc
            guacd = (desktop.guacd_host, desktop.guacd_port)
        else:
            vnc = VncTarget(self.vnc_host, self.vnc_port, self.vnc_password)
            guacd = (settings.guacd_host or "127.0.0.1", settings.guacd_port)
        target = TunnelTarget(
            guacd[0], guacd[1], vnc, rules,
            timezone=settings.timezone,
            name=os.environ.get("JUPYTERHUB_USER", ""),
            max_width=settings.max_width,
            max_height=settings.max_height,
        )
        app = self.make_app(lambda: target, rules)
        server = httpserver.HTTPServer(app, xheaders=True)
        server.listen(self.port, self.ip)
        self.log.info("Sandbox gateway listening on %s:%s", self.ip, self.port)
        activity = asyncio.ensure_future(self.report_activity())
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopped.set)
        await stopped.wait()
        activity.cancel()
        server.stop()
        if desktop is not None:
            await desktop.stop()

    def start(self):
        ioloop.IOLoop.current().run_sync(self.run)


def main(argv=None):
    """Entry point: ``python -m jupyterhub_spaces.sandbox.gateway``."""
    app = SandboxGateway()
    app.initialize(argv)
    app.start()


if __name__ == "__main__":
    main()
