"""The sandbox desktop with the real programs: TigerVNC's Xvnc only on the loopback,
behind a per-session password, with clipboard transfer off; and, when guacd is
installed too, the whole chain browser tunnel -> guacd -> Xvnc."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time

import pytest

from jupyterhub_spaces.sandbox.config import SandboxSettings
from jupyterhub_spaces.sandbox.desktop import XVNC_CLIPBOARD_OFF, Desktop
from jupyterhub_spaces.sandbox.protocol import encode
from jupyterhub_spaces.sandbox.rules import SandboxRules
from jupyterhub_spaces.sandbox.tunnel import TunnelTarget, connect_guacd

pytestmark = pytest.mark.slow


def missing(*programs):
    return [p for p in programs if shutil.which(p) is None]


def needs(*programs):
    absent = missing(*programs)
    return pytest.mark.skipif(
        bool(absent), reason=f"needs {', '.join(absent)} on PATH (see docs/sandbox.md)"
    )


def vnc_response(password: str, challenge: bytes) -> bytes:
    """The VNC authentication answer: DES of the challenge, keyed by the password with
    each byte's bits mirrored (as the RFB protocol specifies)."""
    algorithms = pytest.importorskip("cryptography.hazmat.decrepit.ciphers.algorithms")
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    key = bytes(int(f"{b:08b}"[::-1], 2) for b in password.encode()[:8].ljust(8, b"\0"))
    # triple DES with one key repeated is single DES
    encryptor = Cipher(algorithms.TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(challenge) + encryptor.finalize()


async def vnc_login(port: int, password: str) -> int:
    """Log in to a VNC server with VNC authentication; returns its SecurityResult (0 = ok)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readexactly(12)
        writer.write(b"RFB 003.008\n")
        count = (await reader.readexactly(1))[0]
        await reader.readexactly(count)
        writer.write(bytes([2]))
        challenge = await reader.readexactly(16)
        writer.write(vnc_response(password, challenge))
        return int.from_bytes(await reader.readexactly(4), "big")
    finally:
        writer.close()


def non_loopback_addresses() -> list[str]:
    """IPv4 addresses of this machine other than 127.x (from the kernel's table)."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False).stdout.split()
    return [a for a in out if "." in a and not a.startswith("127.")]


@needs("Xvnc", "vncpasswd", "openbox")
async def test_desktop_xvnc_is_loopback_only_password_protected_and_clipboard_off(tmp_path):
    settings = SandboxSettings(guacd_host="127.0.0.1", guacd_port=1)  # no guacd needed here
    desktop = Desktop(settings, home=str(tmp_path), name="test", width=800, height=600)
    secret_env = {"JUPYTERHUB_API_TOKEN": "hub-secret", "PATH": os.environ["PATH"]}
    try:
        await desktop.start(secret_env, lab=False)
        vnc = desktop.vnc
        assert vnc.host == "127.0.0.1" and len(vnc.password) == 8
        assert desktop.display.startswith(":")

        # RFB greeting on the loopback; the only security type offered is VNC auth (2)
        reader, writer = await asyncio.open_connection("127.0.0.1", vnc.port)
        assert (await reader.readexactly(12)).startswith(b"RFB 003.")
        writer.write(b"RFB 003.008\n")
        count = (await reader.readexactly(1))[0]
        assert list(await reader.readexactly(count)) == [2]
        writer.close()
        # the session's password opens it, another does not
        assert await vnc_login(vnc.port, vnc.password) == 0
        assert await vnc_login(vnc.port, "guessed!") != 0

        # nothing listens on the machine's other addresses
        for address in non_loopback_addresses():
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((address, vnc.port)) != 0, address

        # Xvnc refuses clipboard transfer itself, and desktop programs get no hub token
        xvnc = desktop.processes["Xvnc"]
        cmdline = open(f"/proc/{xvnc.pid}/cmdline", "rb").read().split(b"\0")
        for flag in XVNC_CLIPBOARD_OFF:
            assert flag.encode() in cmdline
        wm = desktop.processes["window manager"]
        environ = open(f"/proc/{wm.pid}/environ", "rb").read().split(b"\0")
        assert not any(e.startswith(b"JUPYTERHUB_") for e in environ)
        assert f"DISPLAY={desktop.display}".encode() in environ
        # the window manager really runs on that display
        await asyncio.sleep(0.5)
        assert wm.returncode is None
    finally:
        await desktop.stop()
    assert all(p.returncode is not None for p in [xvnc, wm])
    assert not os.path.exists(desktop._tmp)


async def wait_for_window(env: dict, window_class: str, process, timeout: float = 20) -> None:
    """Wait until a visible window of ``window_class`` is mapped on ``env``'s display."""
    finder = await asyncio.create_subprocess_exec(
        "xdotool", "search", "--sync", "--onlyvisible", "--class", window_class,
        env=env, stdout=subprocess.DEVNULL,
    )
    try:
        await asyncio.wait_for(finder.wait(), timeout)
    except asyncio.TimeoutError:
        finder.kill()
        await finder.wait()
        pytest.fail(f"no visible {window_class} window after {timeout} s (exit status {process.returncode})")


@needs("guacd", "Xvnc", "vncpasswd", "openbox", "xterm", "xclip", "xdotool")
async def test_real_guacd_typed_command_reaches_desktop_and_clipboard_never_leaves(tmp_path):
    settings = SandboxSettings()
    desktop = Desktop(settings, home=str(tmp_path), name="test", width=800, height=600)
    marker = tmp_path / "typed.txt"
    try:
        # the environment a real session keeps: a guacd built elsewhere may need
        # LD_LIBRARY_PATH (or similar) to load its VNC plugin
        await desktop.start(dict(os.environ), lab=False)
        env = {**os.environ, "DISPLAY": desktop.display, "HOME": str(tmp_path)}
        xterm = await asyncio.create_subprocess_exec("xterm", "-geometry", "80x24+0+0", env=env, cwd=str(tmp_path))
        # typed keys reach the xterm only once the window manager has mapped it
        await wait_for_window(env, "xterm", xterm)
        target = TunnelTarget(desktop.guacd_host, desktop.guacd_port, desktop.vnc, SandboxRules())
        guacd = await connect_guacd(target, (800, 600, 96))
        received = []

        async def read_for(seconds):
            loop = asyncio.get_running_loop()
            end = loop.time() + seconds
            while loop.time() < end:
                try:
                    data = await asyncio.wait_for(guacd.reader.read(65536), 0.5)
                except asyncio.TimeoutError:
                    continue
                if not data:
                    break
                for instr in guacd.parser.feed(data):
                    received.append(instr)
                    if instr.opcode == "sync":
                        guacd.writer.write(encode("sync", instr.args[0]).encode())

        await read_for(3)
        assert any(i.opcode in ("img", "png", "jpeg") for i in received), "guacd drew nothing"
        # click into the xterm and start a fresh line (the first key after a window
        # appears can be lost to focus handling), then type a command through guacd
        guacd.writer.write((encode("mouse", 100, 100, 1) + encode("mouse", 100, 100, 0)).encode())
        guacd.writer.write((encode("key", 0xFF0D, 1) + encode("key", 0xFF0D, 0)).encode())
        await read_for(1)
        for ch in f"echo typed > {marker.name}\r":
            keysym = 0xFF0D if ch == "\r" else ord(ch)
            guacd.writer.write((encode("key", keysym, 1) + encode("key", keysym, 0)).encode())
        await read_for(3)
        assert marker.read_text().strip() == "typed"
        # copy text on the desktop: neither Xvnc nor guacd passes it on
        subprocess.run(["xclip", "-selection", "clipboard"], input=b"SECRET-ROW-42", env=env, check=True)
        received.clear()
        await read_for(3)
        assert "clipboard" not in [i.opcode for i in received]
        assert all("SECRET-ROW-42" not in i.raw for i in received)
        guacd.close()
        xterm.terminate()
        await xterm.wait()
    finally:
        await desktop.stop()


@needs("Xvnc", "vncpasswd", "openbox", "chromium", "xdotool")
async def test_desktop_shows_jupyterlab_in_a_kiosk_browser_reachable_only_inside(tmp_path):
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    settings = SandboxSettings(guacd_host="127.0.0.1", guacd_port=1)
    desktop = Desktop(settings, home=str(tmp_path), name="test", width=1024, height=700)
    loop = asyncio.get_running_loop()

    def status(url):
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    try:
        await desktop.start({"PATH": os.environ["PATH"], "JUPYTERHUB_API_TOKEN": "hub-secret"})
        lab = urlsplit(desktop.lab_url)
        assert lab.hostname == "127.0.0.1"
        base = f"http://127.0.0.1:{lab.port}"
        # JupyterLab needs the session's token, which only the kiosk browser was given
        deadline = loop.time() + 120
        while "kiosk browser" not in desktop.processes and loop.time() < deadline:
            await asyncio.sleep(0.5)
        assert "kiosk browser" in desktop.processes, desktop.log_tail("JupyterLab")
        assert await loop.run_in_executor(None, status, f"{base}/api/contents") == 403
        assert await loop.run_in_executor(None, status, f"{base}/api/contents?{lab.query}") == 200
        for address in non_loopback_addresses():
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((address, lab.port)) != 0, address
        # the kiosk browser opens a window on the session's display
        env = {"DISPLAY": desktop.display, "PATH": os.environ["PATH"]}
        while loop.time() < deadline:
            found = subprocess.run(
                ["xdotool", "search", "--onlyvisible", "--class", "chromium"], env=env, capture_output=True
            )
            if found.stdout.strip():
                break
            await asyncio.sleep(1)
        assert found.stdout.strip(), "no Chromium window on the desktop"
        kiosk = desktop.processes["kiosk browser"]
        cmdline = open(f"/proc/{kiosk.pid}/cmdline", "rb").read().split(b"\0")
        assert b"--kiosk" in cmdline
        environ = open(f"/proc/{kiosk.pid}/environ", "rb").read().split(b"\0")
        assert not any(e.startswith(b"JUPYTERHUB_") for e in environ)
    finally:
        await desktop.stop()


@needs("Xvnc", "vncpasswd", "openbox", "chromium")
def test_gateway_under_a_hub_connects_guacd_to_its_own_desktop(tmp_path):
    """The gateway started by a real hub starts the desktop and hands guacd exactly
    what opens it; stopping the server stops the desktop."""
    import sys
    from pathlib import Path

    from tornado import httpclient, websocket

    sys.path.insert(0, str(Path(__file__).parent))
    from sandbox_hub import OWNER, SandboxHub, ThreadedGuacd

    guacd = ThreadedGuacd()
    hub = SandboxHub(tmp_path / "hub", guacd.port, desktop=True)
    try:
        hub.start()
        hub.start_server(OWNER, timeout=120)
        token = hub.token(OWNER)

        async def open_tunnel():
            request = httpclient.HTTPRequest(
                f"ws://127.0.0.1:{hub.port}/user/{OWNER}/tunnel?width=1024&height=700",
                headers={"Authorization": f"token {token}"},
            )
            conn = await websocket.websocket_connect(request, subprotocols=["guacamole"])
            await asyncio.wait_for(conn.read_message(), 30)
            conn.close()

        asyncio.run(open_tunnel())
        session = guacd.next_session()
        params = session.params
        assert params["hostname"] == "127.0.0.1"
        port, password = int(params["port"]), params["password"]
        assert asyncio.run(vnc_login(port, password)) == 0
        assert params["disable-copy"] == "true"

        r = hub.api("DELETE", f"/users/{OWNER}/server")
        assert r.status_code in (202, 204)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) != 0:
                    break
            time.sleep(0.5)
        else:
            raise AssertionError("the desktop's Xvnc still listens after the server stopped")
    finally:
        hub.stop()
        guacd.close()
