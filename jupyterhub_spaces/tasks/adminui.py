"""Airflow's web UI for spaces admins, behind the JupyterHub login.

A small JupyterHub managed service (``airflow``, routed at ``/services/airflow/``):
it logs the browser in through the hub's OAuth, lets through only users whose token
carries the spaces admin scope, and forwards their requests to Airflow's API server on
127.0.0.1, signed in as the service's own Airflow user (Airflow's ``_token`` cookie is
added on the way; whatever the browser sends as credentials is dropped). Users never
need Airflow: they see their tasks in the Spaces API.

    python -m jupyterhub_spaces.tasks.adminui --airflow-url=http://127.0.0.1:10180/services/airflow \\
        --password-file=var/airflow/passwords.json [--admin-scope=custom:spaces:admin]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from .engine import AirflowClient

#: headers never passed on, either way
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
       "proxy-authenticate", "host", "content-length"}


class AirflowUIHandler(HubOAuthenticated, web.RequestHandler):
    """Every URL under the service's prefix: admins only, forwarded to Airflow."""

    def initialize(self, airflow: AirflowClient, upstream: str, admin_scope: str, prefix: str):
        self.prefix = prefix
        self.airflow = airflow
        self.upstream = upstream
        self.admin_scope = admin_scope

    @property
    def hub_scopes(self):
        # only users holding the admin scope get in (others: 403)
        return {self.admin_scope}

    def check_xsrf_cookie(self):
        # HubOAuth checks it while reading the cookie: a write without the token is
        # not authenticated, so another site cannot make an admin's browser act
        return self.hub_auth.check_xsrf_cookie(self)

    async def _forward(self, _path=None):
        if self.request.method in ("GET", "HEAD") and self.request.path.startswith(self.prefix + "static/"):
            # Airflow's own scripts and styles: public code, no data, no credentials
            return await self._fetch(token=None)
        forwarding = self._signed_in()
        if forwarding is not None:  # None: web.authenticated sent the login redirect or 403
            await forwarding

    @web.authenticated
    def _signed_in(self):
        return self._fetch_as_airflow_admin()

    async def _fetch_as_airflow_admin(self):
        await self._fetch(await self.airflow.token())

    async def _fetch(self, token: str | None):
        headers = {k: v for k, v in self.request.headers.get_all()
                   if k.lower() not in HOP | {"cookie", "authorization"}}
        if token:
            headers["Cookie"] = f"_token={token}"
        body = self.request.body if self.request.method not in ("GET", "HEAD", "DELETE") else None
        request = HTTPRequest(
            self.upstream + self.request.uri, method=self.request.method, headers=headers, body=body,
            follow_redirects=False, request_timeout=60, allow_nonstandard_methods=True,
        )
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        if response.code == 599:
            raise web.HTTPError(502, "Airflow is not reachable")
        self.set_status(response.code, response.reason)
        self._headers.clear()
        for name, value in response.headers.get_all():
            if name.lower() not in HOP | {"set-cookie", "content-encoding", "x-consumed-content-encoding"}:
                self.add_header(name, value)
        body = response.body or b""
        if token and response.headers.get("Content-Type", "").startswith("text/html") and b"<head>" in body:
            # Airflow's pages call its API from scripts: the hub lets such calls in
            # only with its XSRF token, which this script adds from the _xsrf cookie
            self.xsrf_token  # sets the cookie
            script = f'<head><script src="{self.prefix}{XSRF_SCRIPT_NAME}"></script>'.encode()
            body = body.replace(b"<head>", script, 1)
        if body:
            self.write(body)
        await self.finish()

    get = post = put = patch = delete = head = _forward


#: adds the hub's XSRF token to every request Airflow's pages make
XSRF_SCRIPT_NAME = "spaces-xsrf.js"
XSRF_SCRIPT = """\
(function () {
  function token() {
    var m = document.cookie.match(/(?:^|; )_xsrf=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  var send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function () {
    try { this.setRequestHeader("X-XSRFToken", token()); } catch (e) {}
    return send.apply(this, arguments);
  };
  var fetch0 = window.fetch;
  window.fetch = function (input, init) {
    init = init || {};
    var headers = new Headers(init.headers || (input instanceof Request ? input.headers : {}));
    headers.set("X-XSRFToken", token());
    init.headers = headers;
    return fetch0.call(this, input, init);
  };
})();
"""


class XSRFScriptHandler(web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.finish(XSRF_SCRIPT)


def make_app(airflow_url: str, password_file: str, user: str, admin_scope: str) -> web.Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/airflow/")
    parsed = urlparse(airflow_url)
    upstream = f"{parsed.scheme}://{parsed.netloc}"
    hub_auth = HubOAuth.instance(cache_max_age=60)
    settings = {"hub_auth": hub_auth, "cookie_secret": os.urandom(32)}
    client = AirflowClient(airflow_url, user, password_file)
    return web.Application([
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        (url_path_join(prefix, XSRF_SCRIPT_NAME), XSRFScriptHandler),
        (prefix.rstrip("/") + r"(/.*)?", AirflowUIHandler,
         {"airflow": client, "upstream": upstream, "admin_scope": admin_scope, "prefix": prefix}),
    ], **settings)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Airflow's web UI for spaces admins, behind the JupyterHub login")
    parser.add_argument("--airflow-url", required=True)
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--user", default="spaces")
    parser.add_argument("--admin-scope", default="custom:spaces:admin")
    args = parser.parse_args(argv)
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10181"))

    async def serve():
        app = make_app(args.airflow_url, args.password_file, args.user, args.admin_scope)
        app.listen(url.port, url.hostname)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
