"""Production login: a real JupyterHub with the real configurable-http-proxy, using
SpacesOAuthenticator against a real OpenID Connect provider started by the test.

The login is the browser's flow without a browser: a requests session follows the
hub's redirect to the provider, submits the provider's authorization form for a user
whose claims the test set, and follows the redirect back to the hub's callback.
"""

from __future__ import annotations

import html
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from oidc_provider_mock import run_server_in_thread
from sqlalchemy import select

from jupyterhub_spaces import orm
from jupyterhub_spaces.store import Store

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CHP = REPO / "node_modules" / ".bin" / "configurable-http-proxy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def provider():
    """A real OIDC provider on a random port; ``PUT /users/<sub>`` sets a user's claims."""
    with run_server_in_thread(port=0) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def oauth_hub(provider, tmp_path_factory):
    """A hub logging in through ``provider``; yields (url, admin token, spaces db url)."""
    if not CHP.exists():
        pytest.fail(f"{CHP} is missing: run `make test` (or `npm ci`) to install it")
    work = tmp_path_factory.mktemp("oauth-hub")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    token = secrets.token_hex(32)
    spaces_db = f"sqlite:///{work}/spaces.sqlite"
    config = work / "jupyterhub_config.py"
    config.write_text(
        textwrap.dedent(
            f"""
            c = get_config()  # noqa
            c.SpacesSettings.db_url = {spaces_db!r}
            c.JupyterHub.bind_url = {url!r}
            c.JupyterHub.hub_ip = "127.0.0.1"
            c.JupyterHub.hub_port = {free_port()}
            c.JupyterHub.db_url = "sqlite:///{work}/jupyterhub.sqlite"
            c.JupyterHub.cookie_secret = bytes.fromhex({secrets.token_hex(32)!r})
            c.JupyterHub.default_url = "/hub/home"
            c.ConfigurableHTTPProxy.command = [{str(CHP)!r}]
            c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
            c.ConfigurableHTTPProxy.auth_token = {secrets.token_hex(32)!r}
            c.ConfigurableHTTPProxy.pid_file = "{work}/proxy.pid"
            c.JupyterHub.custom_scopes = {{
                "custom:spaces:admin": {{"description": "administer jupyterhub-spaces"}},
            }}
            c.JupyterHub.services = [{{"name": "test-admin", "api_token": {token!r}}}]
            c.JupyterHub.load_roles = [
                {{"name": "test-admin", "scopes": ["admin:users"], "services": ["test-admin"]}},
            ]

            c.JupyterHub.authenticator_class = "spaces-oauth"
            c.SpacesOAuthenticator.client_id = "jupyterhub"
            c.SpacesOAuthenticator.client_secret = "not-checked-by-the-test-provider"
            c.SpacesOAuthenticator.oauth_callback_url = "{url}/hub/oauth_callback"
            c.SpacesOAuthenticator.authorize_url = "{provider}/oauth2/authorize"
            c.SpacesOAuthenticator.token_url = "{provider}/oauth2/token"
            c.SpacesOAuthenticator.userdata_url = "{provider}/userinfo"
            c.SpacesOAuthenticator.scope = ["openid", "profile"]
            c.SpacesOAuthenticator.username_claim = "preferred_username"
            c.SpacesOAuthenticator.allow_all = True
            """
        )
    )
    log_path = work / "jupyterhub.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail():
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-60:])

    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail(f"jupyterhub exited with {proc.returncode}:\n{log_tail()}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"jupyterhub did not come up:\n{log_tail()}")
        try:
            if requests.get(f"{url}/hub/api/", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.3)
    try:
        yield url, token, spaces_db
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def set_claims(provider: str, sub: str, claims: dict) -> None:
    r = requests.put(f"{provider}/users/{sub}", json=claims, timeout=10)
    assert r.status_code == 204, r.text


def oauth_login(hub_url: str, provider: str, sub: str) -> tuple[requests.Session, requests.Response]:
    """Log in as ``sub`` the way a browser does; returns the session and the last response."""
    s = requests.Session()
    r = s.get(f"{hub_url}/hub/oauth_login", timeout=30)
    # the hub sent us to the provider's authorization form
    assert r.url.startswith(f"{provider}/oauth2/authorize"), r.url
    r = s.post(r.url, data={"sub": sub}, timeout=30)
    # ...which sent us back through the hub's callback to wherever the hub lands users
    assert any(
        urlparse(h.url).path == "/hub/oauth_callback" for h in [*r.history, r]
    ), [h.url for h in r.history]
    return s, r


def hub_user(hub, name):
    url, token, _ = hub
    return requests.get(
        f"{url}/hub/api/users/{name}", headers={"Authorization": f"token {token}"}, timeout=10
    )


def catalog_user(spaces_db: str, name: str):
    store = Store(spaces_db)
    try:
        with store.transaction() as db:
            user = db.scalar(select(orm.User).where(orm.User.name == name))
            return None if user is None else (user.org.name, user.display_name)
    finally:
        store.dispose()


def test_login_records_the_organization(oauth_hub, provider):
    url, _, spaces_db = oauth_hub
    set_claims(
        provider,
        "erin-sub",
        {"preferred_username": "erin", "name": "Erin Silva", "org": "northwind"},
    )
    s, r = oauth_login(url, provider, "erin-sub")
    assert r.status_code == 200
    assert urlparse(r.url).path == "/hub/home"
    assert "erin" in r.text
    assert catalog_user(spaces_db, "erin") == ("northwind", "Erin Silva")
    model = hub_user(oauth_hub, "erin").json()
    assert "spaces-admin" not in model["roles"]
    assert "user" in model["roles"]


def test_admin_claim_grants_the_admin_role_and_takes_it_back(oauth_hub, provider):
    url, _, spaces_db = oauth_hub
    claims = {"preferred_username": "frank", "org": "contoso", "groups": ["staff", "spaces-admin"]}
    set_claims(provider, "frank-sub", claims)
    oauth_login(url, provider, "frank-sub")
    model = hub_user(oauth_hub, "frank").json()
    assert "spaces-admin" in model["roles"]
    assert "user" in model["roles"]
    assert catalog_user(spaces_db, "frank") == ("contoso", "")

    # the provider drops the group and moves him to another organization
    set_claims(provider, "frank-sub", {"preferred_username": "frank", "org": "northwind", "groups": ["staff"]})
    oauth_login(url, provider, "frank-sub")
    model = hub_user(oauth_hub, "frank").json()
    assert "spaces-admin" not in model["roles"]
    assert "user" in model["roles"]
    assert catalog_user(spaces_db, "frank") == ("northwind", "")


def test_user_without_organization_is_refused(oauth_hub, provider):
    url, _, spaces_db = oauth_hub
    set_claims(provider, "gina-sub", {"preferred_username": "gina", "name": "Gina Park"})
    s, r = oauth_login(url, provider, "gina-sub")
    assert r.status_code == 403
    text = re.sub(r"\s+", " ", html.unescape(r.text))
    assert "Your account has no organization" in text
    assert "'org' claim" in text
    # no hub login cookie, no hub user, no catalog user
    assert hub_user(oauth_hub, "gina").status_code == 404
    assert catalog_user(spaces_db, "gina") is None
    assert s.get(f"{url}/hub/home", timeout=10, allow_redirects=False).status_code == 302
