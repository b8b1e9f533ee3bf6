"""The desktop inside a sandbox session: guacd (unless one is given), TigerVNC's
Xvnc, a window manager, JupyterLab on the loopback and a kiosk browser showing it.

Everything listens on 127.0.0.1 only and is protected by a random secret made for
this session: the VNC password and JupyterLab's token never leave the gateway process
(the browser only ever talks to the gateway). Xvnc itself refuses clipboard transfer,
so text copied in the desktop cannot leave it even past guacd.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import subprocess
import tempfile
from dataclasses import dataclass, field

from .config import SandboxSettings
from .rules import VncTarget

log = logging.getLogger(__name__)

#: TigerVNC options that switch off clipboard transfer both ways.
XVNC_CLIPBOARD_OFF = ("-SendCutText=0", "-AcceptCutText=0", "-SendPrimary=0", "-SetPrimary=0")


class DesktopError(RuntimeError):
    """A desktop program could not be started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def xvnc_command(
    program: str, display_fd: int, rfb_port: int, password_file: str, width: int, height: int, name: str
) -> list[str]:
    """The Xvnc command line: loopback only, VNC password, no clipboard, no TCP X."""
    return [
        program,
        "-displayfd", str(display_fd),
        "-rfbport", str(rfb_port),
        "-localhost",
        "-interface", "127.0.0.1",
        "-nolisten", "tcp",
        "-SecurityTypes", "VncAuth",
        "-PasswordFile", password_file,
        *XVNC_CLIPBOARD_OFF,
        "-geometry", f"{width}x{height}",
        "-depth", "24",
        "-desktop", name,
    ]


def lab_command(port: int, token: str, root_dir: str) -> list[str]:
    """JupyterLab on the loopback with a token only the kiosk browser knows."""
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        # nothing in the desktop should reach out to the internet by itself
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def kiosk_command(program: str, url: str, profile_dir: str) -> list[str]:
    """A full-screen browser window on ``url`` without the usual browser chrome."""
    cmd = [
        program,
        "--kiosk",
        f"--app={url}",
        f"--user-data-dir={profile_dir}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-sync",
        "--disable-features=Translate,MediaRouter",
        "--password-store=basic",
        "--start-maximized",
    ]
    if os.geteuid() == 0:
        # Chromium refuses to run as root with its sandbox on
        cmd.append("--no-sandbox")
    return cmd


def desktop_env(base: dict[str, str], display: str, home: str) -> dict[str, str]:
    """Environment of desktop programs: no hub credentials, the session's display."""
    env = {k: v for k, v in base.items() if not k.startswith("JUPYTERHUB_")}
    env["DISPLAY"] = display
    env["HOME"] = home
    return env


def make_vnc_password_file(path: str, password: str, vncpasswd: str = "vncpasswd") -> None:
    """Write TigerVNC's password file for ``password`` (``vncpasswd -f``)."""
    result = subprocess.run([vncpasswd, "-f"], input=password.encode(), capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        raise DesktopError(f"vncpasswd failed: {result.stderr.decode(errors='replace').strip()}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(result.stdout)


@dataclass
class Desktop:
    """The running desktop of one session."""

    settings: SandboxSettings
    home: str
    name: str = "sandbox"
    width: int = 1280
    height: int = 800
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    vnc: VncTarget | None = None
    display: str = ""
    guacd_host: str = ""
    guacd_port: int = 0
    lab_url: str = ""
    _tmp: str = ""

    async def _spawn(self, label: str, cmd: list[str], env: dict[str, str], **kw):
        log.info("sandbox: starting %s: %s", label, cmd[0])
        try:
            proc = await asyncio.create_subprocess_exec(*cmd, env=env, start_new_session=True, **kw)
        except OSError as e:
            raise DesktopError(f"cannot start {label} ({cmd[0]}): {e}") from None
        self.processes[label] = proc
        return proc

    async def start_guacd(self, env) -> None:
        if self.settings.guacd_host:
            self.guacd_host, self.guacd_port = self.settings.guacd_host, self.settings.guacd_port
            return
        port = free_port()
        await self._spawn("guacd", [self.settings.guacd, "-f", "-b", "127.0.0.1", "-l", str(port)], env)
        self.guacd_host, self.guacd_port = "127.0.0.1", port
        await wait_for_port("127.0.0.1", port, 20, self.processes["guacd"], "guacd")

    async def start_xvnc(self, env) -> None:
        # VncAuth uses at most 8 characters of the password
        password = secrets.token_urlsafe(6)[:8]
        pwfile = os.path.join(self._tmp, "vncpasswd")
        make_vnc_password_file(pwfile, password)
        rfb_port = free_port()
        read_fd, write_fd = os.pipe()
        try:
            await self._spawn(
                "Xvnc",
                xvnc_command(self.settings.xvnc, write_fd, rfb_port, pwfile, self.width, self.height, self.name),
                env,
                pass_fds=(write_fd,),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=open(os.path.join(self._tmp, "Xvnc.log"), "wb"),
            )
        finally:
            os.close(write_fd)
        loop = asyncio.get_running_loop()
        with os.fdopen(read_fd, "rb") as r:
            number = await asyncio.wait_for(loop.run_in_executor(None, r.readline), 20)
        if not number.strip():
            raise DesktopError("Xvnc did not start: " + self.log_tail("Xvnc"))
        self.display = ":" + number.decode().strip()
        self.vnc = VncTarget("127.0.0.1", rfb_port, password)
        await wait_for_port("127.0.0.1", rfb_port, 20, self.processes["Xvnc"], "Xvnc")

    def log_tail(self, label: str) -> str:
        try:
            with open(os.path.join(self._tmp, f"{label}.log"), "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    async def start(self, base_env: dict[str, str], lab: bool = True, kiosk: bool = True) -> None:
        """Start every program; raises :class:`DesktopError` naming what failed."""
        self._tmp = tempfile.mkdtemp(prefix="spaces-sandbox-")
        env = desktop_env(base_env, "", self.home)
        await self.start_guacd(env)
        await self.start_xvnc(env)
        env = desktop_env(base_env, self.display, self.home)
        await self._spawn("window manager", [self.settings.window_manager], env,
                          stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        if lab:
            port = free_port()
            token = secrets.token_urlsafe(24)
            await self._spawn("JupyterLab", lab_command(port, token, self.home), env, cwd=self.home,
                              stdout=asyncio.subprocess.DEVNULL,
                              stderr=open(os.path.join(self._tmp, "JupyterLab.log"), "wb"))
            self.lab_url = f"http://127.0.0.1:{port}/lab?token={token}"
            if kiosk:
                asyncio.ensure_future(self._start_kiosk_when_lab_is_up(port, env))

    async def _start_kiosk_when_lab_is_up(self, port, env):
        try:
            await wait_for_port("127.0.0.1", port, 120, self.processes["JupyterLab"], "JupyterLab")
            profile = os.path.join(self._tmp, "browser-profile")
            await self._spawn("kiosk browser", kiosk_command(self.settings.kiosk_browser, self.lab_url, profile),
                              env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        except DesktopError as e:
            log.error("sandbox: %s", e)

    async def stop(self) -> None:
        """Stop every program (reverse order) and remove the session's secrets."""
        for label, proc in reversed(list(self.processes.items())):
            if proc.returncode is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except asyncio.TimeoutError:
                    os.killpg(proc.pid, signal.SIGKILL)
                    await proc.wait()
        self.processes.clear()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


async def wait_for_port(host: str, port: int, timeout: float, proc=None, label: str = "") -> None:
    """Wait until ``host:port`` accepts connections (or ``proc`` died)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return
        except OSError:
            pass
        if proc is not None and proc.returncode is not None:
            raise DesktopError(f"{label or 'a desktop program'} exited with status {proc.returncode} before listening")
        if loop.time() > deadline:
            raise DesktopError(f"{label or 'a desktop program'} did not listen on {host}:{port} within {timeout:.0f}s")
        await asyncio.sleep(0.1)
