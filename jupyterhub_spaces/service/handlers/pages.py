"""The Spaces web app: the pages a person uses, served by the spaces service.

The app is one HTML shell (``templates/app.html``) and plain JavaScript/CSS from
``service/static/``; the script talks to the JSON API under ``api/v1/`` with the
browser's HubOAuth cookie and the ``X-XSRFToken`` header (the hub's own XSRF rules,
applied by :class:`~jupyterhub.services.auth.HubOAuth`).

Every page is sent with a Content-Security-Policy that allows only this service's
own scripts, styles and API: no inline script, no third-party origin.

``connect`` is the small page the JupyterLab sidebar opens in a hidden frame: being a
navigation, it runs the hub's OAuth flow and receives the ``_xsrf`` cookie, then
hands the token to its parent window (same origin only).
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache

from jinja2 import Environment, FileSystemLoader, select_autoescape
from tornado import web

from ... import __version__
from ..base import BaseHandler

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATES = os.path.join(HERE, "templates")
STATIC = os.path.join(HERE, "static")

#: what the pages may load: only this origin, never inline script
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "frame-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
        "base-uri 'none'",
    ]
)

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
)


@lru_cache(maxsize=None)
def _static_version(name: str) -> str:
    """A short content hash, so browsers refetch a static file when it changes."""
    try:
        with open(os.path.join(STATIC, name), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()[:12]
    except OSError:
        return __version__


def security_headers(handler: web.RequestHandler) -> None:
    """Headers every page and static file of the app carries."""
    handler.set_header("Content-Security-Policy", CSP)
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("Referrer-Policy", "same-origin")


class PageHandler(BaseHandler):
    """A page of the Spaces app: HTML, logged-in users only (others go to the hub's
    login and come back)."""

    def set_default_headers(self):
        security_headers(self)
        self.set_header("Cache-Control", "no-store")

    def check_xsrf_cookie(self):
        return self.hub_auth.check_xsrf_cookie(self)

    async def prepare(self):
        self.hub_user = await self.identify()
        if self.hub_user is None:
            if self.request.method in ("GET", "HEAD"):
                # the hub's OAuth flow sets the service cookie and sends the browser back
                self.redirect(self.get_login_url())
                return
            raise web.HTTPError(403, "log in to JupyterHub first")

    def render(self, name: str, **ns) -> None:
        prefix = self.service.service_prefix
        hub_prefix = self.hub_auth.hub_prefix
        config = {
            "prefix": prefix,
            "api": prefix + "api/v1/",
            "hubPrefix": hub_prefix,
            "user": self.user_name,
            "admin": self.is_admin,
            "spaceLimit": self.spaces_settings.space_limit,
            "tools": ["jupyterlab", "rstudio", "superset", "sqllab"],
            "profiles": _profiles(self.spaces_settings),
            "xsrf": self.xsrf_token.decode() if isinstance(self.xsrf_token, bytes) else self.xsrf_token,
            "version": __version__,
        }
        html = _env.get_template(name).render(
            prefix=prefix,
            hub_prefix=hub_prefix,
            user=self.user_name,
            admin=self.is_admin,
            static=lambda f: f"{prefix}static/{f}?v={_static_version(f)}",
            # JSON in a non-executed script element: readable by the app, allowed by CSP
            config_json=json.dumps(config).replace("</", "<\\/"),
            **ns,
        )
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(html)

    def write_error(self, status_code: int, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "message", None) or getattr(exc, "log_message", None) or ""
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            _env.get_template("error.html").render(
                status=status_code,
                message=message or self._reason,
                prefix=self.service.service_prefix,
                hub_prefix=self.hub_auth.hub_prefix,
                static=lambda f: f"{self.service.service_prefix}static/{f}?v={_static_version(f)}",
            )
        )


def _profiles(settings) -> list[dict]:
    """The machine profiles a spec may pick, as plain JSON for the form."""
    profiles = getattr(settings, "machine_profiles", None) or {}
    out = []
    items = profiles.items() if isinstance(profiles, dict) else enumerate(profiles)
    for key, value in items:
        if isinstance(value, dict):
            entry = {k: v for k, v in value.items() if isinstance(v, (str, int, float, bool))}
            entry["name"] = key
            for k in ("min_workers", "max_workers", "description", "display_name"):
                if k in value:
                    entry[k] = value[k]
            out.append(entry)
        else:
            out.append({"name": str(value)})
    return out


class AppHandler(PageHandler):
    """``GET /services/spaces/``: the Spaces app (routes after ``#`` are the app's)."""

    async def get(self):
        self.render("app.html")


class ConnectHandler(PageHandler):
    """``GET /services/spaces/connect``: hands the XSRF token to the JupyterLab
    sidebar that opened this page in a hidden frame."""

    async def get(self):
        self.render("connect.html")


class StaticHandler(web.StaticFileHandler):
    """The app's scripts, styles and images, with the same security headers."""

    def set_default_headers(self):
        security_headers(self)

    def set_extra_headers(self, path):
        if self.get_argument("v", None):
            # versioned URLs never change
            self.set_header("Cache-Control", "public, max-age=31536000, immutable")


default_handlers = [
    (r"/?", AppHandler),
    (r"connect", ConnectHandler),
    (r"static/(.*)", StaticHandler, {"path": STATIC}),
]
