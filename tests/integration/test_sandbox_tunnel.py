"""The sandbox tunnel against a scripted guacd that speaks the real protocol over TCP:
the handshake uses the locked parameters, data paths are cut in both directions,
guacd's connection id stays on the server, pings are answered."""

from __future__ import annotations

import asyncio
import socket

import pytest
from tornado import httpserver, web, websocket
from tornado.httpclient import HTTPRequest

from jupyterhub_spaces.sandbox.protocol import Parser, encode
from jupyterhub_spaces.sandbox.rules import SandboxRules, VncTarget
from jupyterhub_spaces.sandbox.scripted_guacd import ScriptedGuacd
from jupyterhub_spaces.sandbox.tunnel import TunnelHandler, TunnelTarget

VNC = VncTarget("127.0.0.1", 5917, "per-session-secret")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """The tunnel handler served on a random port, pointing at ``guacd_port``."""

    def __init__(self, guacd_port: int, rules: SandboxRules | None = None):
        self.target = TunnelTarget(
            "127.0.0.1", guacd_port, VNC, rules or SandboxRules(), timezone="Europe/Paris",
            name="bob", max_width=1920, max_height=1200, handshake_timeout=5,
        )
        app = web.Application([(r"/tunnel", TunnelHandler)], sandbox_target=lambda: self.target)
        self.port = free_port()
        self.server = httpserver.HTTPServer(app)
        self.server.listen(self.port, "127.0.0.1")

    async def connect(self, query: str = "width=1024&height=768&dpi=96", subprotocols=("guacamole",)):
        request = HTTPRequest(f"ws://127.0.0.1:{self.port}/tunnel?{query}")
        return await websocket.websocket_connect(request, subprotocols=list(subprotocols))


class Browser:
    """Reads whole instructions the way guacamole-common-js does."""

    def __init__(self, conn):
        self.conn = conn
        self.parser = Parser()
        self.received = []
        self.messages = []

    async def next(self, timeout=10):
        while True:
            msg = await asyncio.wait_for(self.conn.read_message(), timeout)
            if msg is None:
                return None
            self.messages.append(msg)
            got = self.parser.feed_text(msg)
            self.received.extend(got)
            if got:
                return got

    async def wait_for(self, opcode, timeout=10):
        for instr in self.received:
            if instr.opcode == opcode:
                return instr
        while True:
            got = await self.next(timeout)
            if got is None:
                raise AssertionError(f"tunnel closed before {opcode!r}; got {[i.opcode for i in self.received]}")
            for instr in got:
                if instr.opcode == opcode:
                    return instr

    def send(self, *elements):
        self.conn.write_message(encode(*elements))


@pytest.fixture
async def guacd():
    peer = await ScriptedGuacd().start()
    yield peer
    await peer.stop()


@pytest.fixture
async def gateway(guacd):
    # async so that the server listens on the running test loop, whatever loop an
    # earlier synchronous test left as "current"
    gw = Gateway(guacd.port)
    yield gw
    gw.server.stop()


async def open_tunnel(gateway, guacd, query="width=1024&height=768&dpi=96"):
    browser = Browser(await gateway.connect(query))
    session = await asyncio.wait_for(guacd.sessions.get(), 10)
    [first] = await browser.next()
    return browser, session, first


async def test_handshake_uses_locked_parameters_whatever_the_query_says(gateway, guacd):
    query = (
        "width=1024&height=768&dpi=96&hostname=evil.example&port=22&disable-copy=false"
        "&disable-paste=false&enable-sftp=true&password=guess&recording-path=/tmp/x"
        "&GUAC_ID=$other&select=$other"
    )
    browser, session, first = await open_tunnel(gateway, guacd, query)
    assert session.handshake["select"] == ("vnc",)
    assert session.params["hostname"] == "127.0.0.1"
    assert session.params["port"] == "5917"
    assert session.params["password"] == "per-session-secret"
    assert session.params["disable-copy"] == "true"
    assert session.params["disable-paste"] == "true"
    assert session.params["enable-sftp"] == "false"
    assert session.params["enable-audio"] == "false"
    assert session.params["recording-path"] == ""
    assert session.params["VERSION_1_5_0"] == "VERSION_1_5_0"
    assert session.handshake["size"] == ("1024", "768", "96")
    assert session.handshake["audio"] == ()
    assert session.handshake["image"] == ("image/png", "image/jpeg", "image/webp")
    assert session.handshake["timezone"] == ("Europe/Paris",)
    assert session.handshake["name"] == ("bob",)


async def test_screen_size_from_the_query_is_clamped(gateway, guacd):
    _, session, _ = await open_tunnel(gateway, guacd, "width=100000&height=5&dpi=abc")
    assert session.handshake["size"] == ("1920", "240", "96")


async def test_paste_setting_and_recording_reach_guacd(guacd):
    gw = Gateway(guacd.port, SandboxRules(allow_paste=True, recording_path="/srv/audit", recording_name="bob-s1"))
    try:
        _, session, _ = await open_tunnel(gw, guacd)
    finally:
        gw.server.stop()
    assert session.params["disable-paste"] == "false"
    assert session.params["disable-copy"] == "true"
    assert session.params["recording-path"] == "/srv/audit"
    assert session.params["recording-name"] == "bob-s1"


async def test_tunnel_uuid_first_and_connection_id_never_sent(gateway, guacd):
    browser, session, first = await open_tunnel(gateway, guacd)
    assert first.opcode == "" and len(first.args) == 1 and len(first.args[0]) == 36
    assert first.args[0] != session.connection_id.lstrip("$")
    # guacd repeats its id in a late ready and in a nested instruction; neither passes
    session.send("ready", session.connection_id)
    session.send("nest", "0", encode("ready", session.connection_id))
    session.send("sync", "42")
    await browser.wait_for("sync")
    everything = "".join(browser.messages)
    assert session.connection_id not in everything
    assert session.connection_id.lstrip("$") not in everything


async def test_ping_is_answered_by_the_gateway(gateway, guacd):
    browser, session, _ = await open_tunnel(gateway, guacd)
    browser.send("", "ping", "1700000000123")
    pong = await browser.next()
    assert [i.elements for i in pong] == [("", "ping", "1700000000123")]
    browser.send("sync", "1")
    await session.wait_for("sync")
    assert "" not in session.opcodes()


async def test_browser_export_and_import_paths_are_cut(gateway, guacd):
    browser, session, _ = await open_tunnel(gateway, guacd)
    browser.send("clipboard", "0", "text/plain")
    browser.send("blob", "0", "c2VjcmV0IGZyb20gbGFwdG9w")
    browser.send("end", "0")
    browser.send("file", "1", "text/csv", "upload.csv")
    browser.send("pipe", "2", "text/plain", "exfil")
    browser.send("put", "0", "3", "text/plain", "/etc/passwd")
    browser.send("argv", "4", "text/plain", "disable-copy")
    browser.send("select", session.connection_id)
    browser.conn.write_message(encode("mouse", "5", "6", "1") + encode("key", "65", "1") + encode("size", "9999", "9999"))
    await session.wait_for("size")
    assert session.opcodes() == ["mouse", "key", "size"]
    assert session.received[-1].args == ("1920", "1200")


async def test_guacd_clipboard_file_and_pipe_never_reach_the_browser(gateway, guacd):
    browser, session, _ = await open_tunnel(gateway, guacd)
    secret = "c2VjcmV0IHRhYmxlIHJvd3M="
    session.send("clipboard", "7", "text/plain")
    session.send("blob", "7", secret)
    session.send("end", "7")
    session.send("file", "8", "text/csv", "table.csv")
    session.send("blob", "8", secret)
    session.send("pipe", "9", "text/plain", "out")
    session.send("blob", "9", secret)
    session.send("filesystem", "0", "Downloads")
    session.send("img", "10", "14", "0", "image/png", "0", "0")
    session.send("blob", "10", "iVBORw0KGgo=")
    session.send("end", "10")
    session.send("rect", "0", "0", "0", "10", "10")
    await browser.wait_for("rect")
    assert [i.opcode for i in browser.received[1:]] == ["img", "blob", "end", "rect"]
    assert secret not in "".join(browser.messages)
    # guacd was told at once that nobody reads those streams
    for stream in ("7", "8", "9"):
        ack = await session.wait_for("ack", predicate=lambda i, s=stream: i.args[0] == s)
        assert ack.args[2] == "771"
    # and the browser cannot ack them itself
    browser.send("ack", "8", "OK", "0")
    browser.send("ack", "10", "OK", "0")
    browser.send("sync", "2")
    await session.wait_for("sync")
    assert [i.args[0] for i in session.received if i.opcode == "ack" and i.args[1] == "OK"] == []


async def test_emoji_reaches_the_javascript_client_with_its_utf16_length(gateway, guacd):
    browser, session, _ = await open_tunnel(gateway, guacd)
    session.send("name", "bob 🙂 データ")
    # 9 code points for guacd, 10 UTF-16 units for guacamole-common-js
    assert session.received == []
    message = await asyncio.wait_for(browser.conn.read_message(), 10)
    assert message == "4.name,10.bob 🙂 データ;"


async def test_handshake_refusal_is_reported_with_its_status(guacd):
    guacd.fail_with = ("Unable to connect to VNC server.", "519")
    gw = Gateway(guacd.port)
    try:
        conn = await gw.connect()
        browser = Browser(conn)
        err = await browser.wait_for("error")
        assert "Unable to connect to VNC server" in err.args[0]
        assert err.args[1] == "519"
        assert await conn.read_message() is None
        assert conn.close_reason == "519"
    finally:
        gw.server.stop()


async def test_guacd_down_is_reported():
    gw = Gateway(free_port())
    try:
        conn = await gw.connect()
        err = await Browser(conn).wait_for("error")
        assert "cannot reach guacd" in err.args[0]
        assert await conn.read_message() is None
        assert conn.close_reason == str(0x0207)
    finally:
        gw.server.stop()


async def test_without_guacamole_subprotocol_the_tunnel_refuses(gateway, guacd):
    conn = await gateway.connect(subprotocols=())
    assert await conn.read_message() is None
    assert guacd.sessions.empty()


async def test_malformed_browser_data_closes_the_tunnel(gateway, guacd):
    browser, session, _ = await open_tunnel(gateway, guacd)
    browser.conn.write_message("5.mouse,x.1;")
    err = await browser.wait_for("error")
    assert err.args[1] == str(0x0300)
    await asyncio.wait_for(session.closed.wait(), 10)
