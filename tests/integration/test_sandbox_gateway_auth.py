"""The Sandbox gateway as a real JupyterHub server: only its owner gets the page and
the tunnel; anonymous visitors go to the hub login, other users and admins are refused."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from tornado import httpclient, websocket

sys.path.insert(0, str(Path(__file__).parent))
from sandbox_hub import ADMIN, OTHER, OWNER, guacd, hub  # noqa: E402,F401  (fixtures)

from jupyterhub_spaces.sandbox.protocol import Parser  # noqa: E402

pytestmark = pytest.mark.slow


def page(hub, user=None):
    return f"{hub.url}/user/{OWNER}/"


def test_anonymous_visitor_is_sent_to_the_hub_login(hub):
    import requests

    r = requests.get(page(hub), allow_redirects=False, timeout=30)
    assert r.status_code == 302
    assert "/hub/api/oauth2/authorize" in r.headers["Location"]
    assert "client_id=jupyterhub-user-bob" in r.headers["Location"]


def test_owner_gets_the_client_page_after_oauth(hub):
    s = hub.login(OWNER)
    r = s.get(page(hub) + "lab", timeout=30)
    assert r.status_code == 200, hub.log_tail()
    assert r.url.startswith(page(hub))
    assert "SANDBOX" in r.text
    assert 'data-tunnel="/user/bob/tunnel"' in r.text
    assert "Sales sandbox" in r.text
    js = s.get(page(hub) + "static/vendor/guacamole-common.js", timeout=30)
    assert js.status_code == 200 and "WebSocketTunnel" in js.text


def test_other_user_cannot_log_in_to_the_owners_sandbox(hub):
    s = hub.login(OTHER)
    r = s.get(page(hub), timeout=30)
    assert r.status_code == 403
    assert "SANDBOX" not in r.text


@pytest.mark.parametrize(
    "user, status",
    [(OWNER, 200), (OTHER, 403), (ADMIN, 403)],
)
def test_tokens_only_the_owners_is_accepted(hub, user, status):
    """An admin's token carries access to every server; the gateway still refuses it."""
    import requests

    token = hub.token(user)
    r = requests.get(page(hub), headers={"Authorization": f"token {token}"}, allow_redirects=False, timeout=30)
    assert r.status_code == status
    js = requests.get(
        page(hub) + "static/sandbox.js", headers={"Authorization": f"token {token}"}, allow_redirects=False, timeout=30
    )
    assert js.status_code == status


async def _tunnel(hub, headers):
    request = httpclient.HTTPRequest(
        f"ws://127.0.0.1:{hub.port}/user/{OWNER}/tunnel?width=800&height=600&hostname=evil&disable-copy=false",
        headers=headers,
    )
    return await websocket.websocket_connect(request, subprotocols=["guacamole"])


@pytest.mark.parametrize("user", [None, OTHER, ADMIN])
def test_tunnel_refuses_everyone_but_the_owner(hub, guacd, user):
    headers = {"Authorization": f"token {hub.token(user)}"} if user else {}
    with pytest.raises(httpclient.HTTPClientError) as e:
        asyncio.run(_tunnel(hub, headers))
    assert e.value.code == 403
    assert guacd.peer.sessions.empty()


def test_tunnel_with_the_owners_cookie_reaches_guacd_with_locked_parameters(hub, guacd):
    s = hub.login(OWNER)
    assert s.get(page(hub), timeout=30).status_code == 200
    cookie = "; ".join(f"{c.name}={c.value}" for c in s.cookies if c.path.startswith(f"/user/{OWNER}"))

    async def run():
        conn = await _tunnel(hub, {"Cookie": cookie})
        first = await asyncio.wait_for(conn.read_message(), 30)
        conn.close()
        return first

    first = asyncio.run(run())
    [instr] = Parser().feed_text(first)
    assert instr.opcode == "" and len(instr.args[0]) == 36
    session = guacd.next_session()
    assert session.params["hostname"] == "127.0.0.1"
    assert session.params["port"] == "5999"
    assert session.params["disable-copy"] == "true"
    assert session.handshake["size"] == ("800", "600", "96")
    assert session.handshake["name"] == (OWNER,)


def test_tunnel_from_another_site_with_the_owners_cookie_is_refused(hub, guacd):
    """A page on another site cannot ride the owner's cookie into the desktop."""
    s = hub.login(OWNER)
    assert s.get(page(hub), timeout=30).status_code == 200
    cookie = "; ".join(f"{c.name}={c.value}" for c in s.cookies if c.path.startswith(f"/user/{OWNER}"))
    with pytest.raises(httpclient.HTTPClientError) as e:
        asyncio.run(_tunnel(hub, {"Cookie": cookie, "Origin": "http://evil.example"}))
    assert e.value.code == 403
    assert guacd.peer.sessions.empty()


def test_desktop_use_is_reported_to_the_hub_as_activity(hub, guacd):
    """Idle culling must not stop a sandbox someone is working in: the gateway
    reports input through the tunnel to the hub's activity API."""
    import time

    def server_activity():
        return hub.api("GET", f"/users/{OWNER}").json()["servers"][""]["last_activity"]

    before = server_activity()
    token = hub.token(OWNER)

    async def use_desktop():
        conn = await _tunnel(hub, {"Authorization": f"token {token}"})
        await asyncio.wait_for(conn.read_message(), 30)
        await asyncio.sleep(1.1)  # activity times have a resolution the hub keeps
        conn.write_message("5.mouse,2.10,2.10,1.0;")
        await asyncio.sleep(0.5)
        conn.close()

    asyncio.run(use_desktop())
    guacd.next_session()
    deadline = time.monotonic() + 30
    while server_activity() == before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert server_activity() > before
