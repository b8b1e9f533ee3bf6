"""What the spawner runs for a sandbox session, and the desktop's command lines."""

import os
import sys
from types import SimpleNamespace

from traitlets.config import Config

from jupyterhub_spaces import policy, sandbox
from jupyterhub_spaces.sandbox.config import SandboxSettings
from jupyterhub_spaces.sandbox.desktop import desktop_env, kiosk_command, lab_command, xvnc_command
from jupyterhub_spaces.sandbox.gateway import SandboxGateway
from jupyterhub_spaces.session import SessionContext
from jupyterhub_spaces.settings import SpacesSettings


def make_ctx(backend="local", config=None):
    spec = policy.SpaceSpec(id=7, owner="bob")
    decision = policy.Decision("bob", 7, policy.Mode.sandbox, policy.Role.owner)
    spawner = SimpleNamespace(config=config or Config())
    return SessionContext(
        "bob", 7, "sales", "Sales analysis", spec, decision, SpacesSettings(),
        workdir="/srv/homes/bob/sales", backend=backend, spawner=spawner,
    )


def parse(cmd):
    """Run the gateway's own option parsing on a command (without starting it)."""
    assert cmd[:3] == [sys.executable, "-m", "jupyterhub_spaces.sandbox.gateway"]
    app = SandboxGateway()
    app.parse_command_line(cmd[3:])
    return app, SandboxSettings(parent=app)


def test_gateway_command_carries_site_settings():
    config = Config()
    config.SandboxSettings.allow_paste = True
    config.SandboxSettings.recording_path = "/srv/recordings"
    config.SandboxSettings.max_width = 1920
    app, settings = parse(sandbox.gateway_command(make_ctx(config=config)))
    assert app.space == "Sales analysis"
    assert app.home == "/srv/homes/bob/sales"
    assert app.recording_name == "bob-space-7-${GUAC_DATE}-${GUAC_TIME}"  # the server name, not the slug
    assert settings.allow_paste is True
    assert settings.recording_path == "/srv/recordings"
    assert settings.max_width == 1920
    assert settings.guacd_host == ""


def test_gateway_command_defaults_block_paste():
    _, settings = parse(sandbox.gateway_command(make_ctx()))
    assert settings.allow_paste is False
    assert settings.recording_path == ""


def test_gateway_command_in_a_pod_uses_the_guacd_sidecar():
    _, settings = parse(sandbox.gateway_command(make_ctx(backend="kubernetes")))
    assert (settings.guacd_host, settings.guacd_port) == ("127.0.0.1", 4822)


def test_gateway_accepts_the_arguments_jupyterhub_adds():
    app, _ = parse(
        sandbox.gateway_command(make_ctx())
        + ["--ip=127.0.0.1", "--port=12345", "--SingleUserNotebookApp.default_url=/lab", "--debug"]
    )
    assert (app.ip, app.port) == ("127.0.0.1", 12345)


def test_missing_programs_names_each_absent_program(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("Xvnc", "vncpasswd", "chromium"):
        (bindir / name).write_text("#!/bin/sh\n")
        (bindir / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    assert sandbox.missing_programs() == ["guacd", "openbox"]
    # with a guacd elsewhere (a sidecar or a shared daemon) it is not needed here
    assert sandbox.missing_programs(SandboxSettings(guacd_host="127.0.0.1")) == ["openbox"]
    config = Config()
    config.SandboxSettings.guacd_host = "127.0.0.1"
    config.SandboxSettings.window_manager = "chromium"  # any program that is there
    assert sandbox.missing_programs(config) == []
    monkeypatch.setenv("PATH", "")
    assert sandbox.missing_programs() == ["guacd", "Xvnc", "openbox", "chromium", "vncpasswd"]


def test_xvnc_command_is_loopback_only_without_clipboard():
    cmd = xvnc_command("Xvnc", 5, 5901, "/run/pw", 1280, 800, "Sales")
    assert cmd[cmd.index("-rfbport") + 1] == "5901"
    assert "-localhost" in cmd
    assert cmd[cmd.index("-interface") + 1] == "127.0.0.1"
    assert cmd[cmd.index("-SecurityTypes") + 1] == "VncAuth"
    for flag in ("-SendCutText=0", "-AcceptCutText=0", "-SendPrimary=0", "-SetPrimary=0"):
        assert flag in cmd


def test_lab_listens_on_loopback_with_a_token():
    cmd = lab_command(9999, "tok", "/home/x")
    assert "--ip=127.0.0.1" in cmd and "--port=9999" in cmd
    assert "--IdentityProvider.token=tok" in cmd
    assert "--LabApp.news_url=None" in cmd


def test_kiosk_browser_is_full_screen_on_lab():
    cmd = kiosk_command("chromium", "http://127.0.0.1:9999/lab?token=t", "/tmp/p")
    assert "--kiosk" in cmd and "--app=http://127.0.0.1:9999/lab?token=t" in cmd
    assert ("--no-sandbox" in cmd) == (os.geteuid() == 0)


def test_desktop_programs_never_see_hub_credentials():
    env = desktop_env(
        {"JUPYTERHUB_API_TOKEN": "x", "JUPYTERHUB_USER": "bob", "PGPASSWORD": "db", "PATH": "/bin"}, ":3", "/h"
    )
    assert env == {"PGPASSWORD": "db", "PATH": "/bin", "DISPLAY": ":3", "HOME": "/h"}
