"""A real JupyterHub with the real configurable-http-proxy and the spaces service as a
hub-managed service, on random free ports, for integration tests.

Used by ``tests/integration/conftest.py``; other test folders can import it too
(``sys.path`` gets this folder in their conftest) to run a hub with their own extra
config (``extra_config`` is appended to the generated ``jupyterhub_config.py``).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import delete

from jupyterhub_spaces import orm
from jupyterhub_spaces.store import Store

REPO = Path(__file__).resolve().parents[2]
CHP = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
SERVICE = "spaces"
PREFIX = f"/services/{SERVICE}/"
API = PREFIX + "api/v1/"
ADMIN_SCOPE = "custom:spaces:admin"
USERS = ("alice", "bob", "carol", "dave", "admin")
PASSWORD = "spaces-test-password"
PG_SERVER = os.environ.get("SPACES_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_proxy() -> str:
    """The path of configurable-http-proxy, installing it from npm when missing."""
    if not CHP.exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=REPO, check=True)
    return str(CHP)


# ---------------------------------------------------------------------------
# PostgreSQL: one uniquely named database per run (others share the server)


def _pg_admin_dsn() -> str:
    return PG_SERVER.replace("postgresql+psycopg://", "postgresql://")


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(_pg_admin_dsn(), connect_timeout=3):
            return True
    except Exception:
        return False


@contextmanager
def postgres_database(prefix: str = "spaces_test"):
    """Create a fresh database, yield its SQLAlchemy URL, drop it afterwards."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_SERVER.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------------------


class BrowserSession(requests.Session):
    """A requests session logged in through the hub's real login form and OAuth flow.

    Writes echo the service's ``_xsrf`` cookie in ``X-XSRFToken``, as the Spaces web
    app does; pass ``xsrf=False`` to a call to leave it out.
    """

    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url

    def xsrf_cookie(self) -> str | None:
        for cookie in self.cookies:
            if cookie.name == "_xsrf" and cookie.path.startswith(PREFIX.rstrip("/")):
                return cookie.value
        return None

    def request(self, method, url, *args, xsrf: bool = True, **kwargs):
        if url.startswith("/"):
            url = self.base_url + url
        if xsrf and method.upper() not in ("GET", "HEAD", "OPTIONS"):
            token = self.xsrf_cookie()
            if token:
                headers = dict(kwargs.pop("headers", None) or {})
                headers.setdefault("X-XSRFToken", token)
                kwargs["headers"] = headers
        kwargs.setdefault("timeout", 30)
        return super().request(method, url, *args, **kwargs)


class TokenSession(requests.Session):
    """A requests session sending a JupyterHub API token, as an API client does."""

    def __init__(self, base_url: str, token: str):
        super().__init__()
        self.base_url = base_url
        self.token = token
        self.headers["Authorization"] = f"token {token}"

    def request(self, method, url, *args, **kwargs):
        if url.startswith("/"):
            url = self.base_url + url
        kwargs.setdefault("timeout", 30)
        return super().request(method, url, *args, **kwargs)


class SpacesHub:
    """One running hub + proxy + spaces service.

    ``url``: the proxy's public URL (every request goes through it);
    ``db_url``: the spaces catalog database the service uses.
    """

    def __init__(self, workdir: Path, db_url: str, extra_config: str = "", spaces_config: str = ""):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_url = db_url
        self.extra_config = extra_config
        self.extra_spaces_config = spaces_config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token = secrets.token_hex(32)
        self.proc: subprocess.Popen | None = None
        self._tokens: dict[str, str] = {}
        self._browsers: dict[str, BrowserSession] = {}
        self.log_path = self.workdir / "jupyterhub.log"

    # -- configuration ----------------------------------------------------

    @property
    def spaces_config_path(self) -> Path:
        return self.workdir / "spaces_config.py"

    def write_config(self) -> Path:
        self.spaces_config_path.write_text(
            "c = get_config()  # noqa\n"
            f"c.SpacesSettings.db_url = {self.db_url!r}\n"
            f"c.SpacesSettings.data_root = {str(self.workdir / 'data')!r}\n"
            f"c.SpacesSettings.source_db_url = {'sqlite:///' + str(self.workdir / 'sources.sqlite')!r}\n"
            + self.extra_spaces_config
        )
        service_port = free_port()
        cfg = f"""
        import sys
        c = get_config()  # noqa
        load_subconfig({str(self.spaces_config_path)!r})
        c.JupyterHub.ip = "127.0.0.1"
        c.JupyterHub.port = {self.port}
        c.JupyterHub.hub_ip = "127.0.0.1"
        c.JupyterHub.hub_port = {free_port()}
        c.JupyterHub.db_url = "sqlite:///" + {str(self.workdir / 'jupyterhub.sqlite')!r}
        c.JupyterHub.cookie_secret = bytes.fromhex({secrets.token_hex(32)!r})
        c.JupyterHub.pid_file = {str(self.workdir / 'jupyterhub.pid')!r}
        c.JupyterHub.cleanup_servers = True
        c.JupyterHub.proxy_class = "configurable-http-proxy"
        c.ConfigurableHTTPProxy.command = [{ensure_proxy()!r}]
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
        c.ConfigurableHTTPProxy.auth_token = {secrets.token_hex(32)!r}
        c.ConfigurableHTTPProxy.should_start = True
        c.ConfigurableHTTPProxy.pid_file = {str(self.workdir / 'proxy.pid')!r}

        c.JupyterHub.authenticator_class = "dummy"
        c.DummyAuthenticator.password = {PASSWORD!r}
        c.Authenticator.allowed_users = {set(USERS)!r}

        c.JupyterHub.custom_scopes = {{
            {ADMIN_SCOPE!r}: {{"description": "administer jupyterhub-spaces"}},
        }}
        c.JupyterHub.extra_user_scopes = {{"access:services!service={SERVICE}"}}
        c.JupyterHub.load_roles = [
            {{"name": "spaces-admin", "scopes": [{ADMIN_SCOPE!r}], "users": ["admin"]}},
            {{"name": "admin", "services": ["test-admin"]}},
        ]
        c.JupyterHub.services = [
            {{
                "name": {SERVICE!r},
                "url": "http://127.0.0.1:{service_port}",
                "command": [sys.executable, "-m", "jupyterhub_spaces.service.app",
                            "--config=" + {str(self.spaces_config_path)!r}],
                "cwd": {str(self.workdir)!r},
                "oauth_no_confirm": True,
                "oauth_client_allowed_scopes": [{ADMIN_SCOPE!r}],
            }},
            {{"name": "test-admin", "api_token": {self.admin_token!r}}},
        ]
        """
        path = self.workdir / "jupyterhub_config.py"
        path.write_text(textwrap.dedent(cfg) + "\n" + self.extra_config)
        return path

    # -- lifecycle --------------------------------------------------------

    def start(self, timeout: float = 90) -> None:
        config = self.write_config()
        log = open(self.log_path, "ab")
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config), "--debug"],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyterhub exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"jupyterhub did not come up in {timeout}s:\n{self.log_tail()}")
            try:
                r = requests.get(self.url + API, timeout=2)
                # the service answers through the proxy with its own JSON 401
                if r.status_code == 401 and r.headers.get("Content-Type", "").startswith("application/json"):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def log_tail(self, n: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    # -- clients ----------------------------------------------------------

    def hub_api(self, method: str, path: str, **kwargs) -> requests.Response:
        """Call the hub's REST API with the admin token (``path`` after /hub/api)."""
        return requests.request(
            method,
            f"{self.url}/hub/api{path}",
            headers={"Authorization": f"token {self.admin_token}"},
            timeout=30,
            **kwargs,
        )

    def api_token(self, user: str, scopes: list[str] | None = None) -> str:
        """A new JupyterHub API token of ``user`` (all of the user's permissions by
        default), created through the hub API with the admin token."""
        key = (user, tuple(scopes) if scopes else None)
        if key in self._tokens:
            return self._tokens[key]
        body = {"note": "spaces integration test", "expires_in": 3600}
        if scopes is not None:
            body["scopes"] = scopes
        r = self.hub_api("POST", f"/users/{user}/tokens", json=body)
        if r.status_code != 201:
            raise RuntimeError(f"creating a token for {user}: {r.status_code} {r.text}")
        self._tokens[key] = r.json()["token"]
        return self._tokens[key]

    def token_session(self, user: str, scopes: list[str] | None = None) -> TokenSession:
        return TokenSession(self.url, self.api_token(user, scopes))

    def browser(self, user: str, fresh: bool = False) -> BrowserSession:
        """A session logged in as ``user`` the way a browser is: the hub's login form,
        then the OAuth flow into the service, which sets the service's cookie."""
        if user in self._browsers and not fresh:
            return self._browsers[user]
        s = BrowserSession(self.url)
        r = s.get("/hub/login")
        r.raise_for_status()
        m = re.search(r'name="_xsrf"\s+value="([^"]+)"', r.text)
        data = {"username": user, "password": PASSWORD}
        if m:
            data["_xsrf"] = m.group(1)
        # the hub answers a good login with a redirect (to a server we do not need)
        r = s.post("/hub/login", data=data, allow_redirects=False, xsrf=False)
        if r.status_code != 302:
            raise RuntimeError(f"hub login of {user} failed: {r.status_code} {r.text[:300]}")
        r = s.get(f"{PREFIX}login?next={API}")
        if r.status_code != 200 or r.url != self.url + API:
            raise RuntimeError(f"OAuth login of {user} into the service ended at {r.url}: {r.status_code} {r.text[:300]}")
        if not fresh:
            self._browsers[user] = s
        return s

    def clients(self, user: str) -> dict[str, requests.Session]:
        """Both kinds of caller for ``user``: ``{"browser": ..., "token": ...}``."""
        return {"browser": self.browser(user), "token": self.token_session(user)}


def api_json(r: requests.Response) -> dict:
    """The JSON body of a response, with the response in the error when it is not JSON."""
    try:
        return r.json()
    except ValueError:
        raise AssertionError(f"{r.request.method} {r.url} -> {r.status_code}, not JSON: {r.text[:500]}")


__all__ = [
    "ADMIN_SCOPE",
    "API",
    "PASSWORD",
    "PREFIX",
    "USERS",
    "BrowserSession",
    "SpacesHub",
    "TokenSession",
    "api_json",
    "free_port",
    "postgres_available",
    "postgres_database",
]


def clear_catalog(store: Store) -> None:
    """Delete every row of every catalog table (children first), but the catalog
    revision's one row (it is never deleted; the deletes raise it)."""
    with store.transaction() as db:
        for table in reversed(orm.Base.metadata.sorted_tables):
            if table is not orm.CatalogRevision.__table__:
                db.execute(delete(table))
