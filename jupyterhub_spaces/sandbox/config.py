"""Site settings of Sandbox sessions, set in the hub's config as ``c.SandboxSettings``.

The hub reads them when it starts a sandbox session and passes them to the gateway
on its command line (see :func:`jupyterhub_spaces.sandbox.gateway_command`), so the
user's process cannot choose them.
"""

from __future__ import annotations

from traitlets import Bool, Integer, Unicode
from traitlets.config import Configurable


class SandboxSettings(Configurable):
    """How sandbox desktops are run and what they allow."""

    allow_paste = Bool(
        False,
        help="Let users paste text from their own computer into the sandbox desktop. "
        "Copying out of the desktop is never possible.",
    ).tag(config=True)

    recording_path = Unicode(
        "",
        help="Directory where guacd records every sandbox session (screen and keys) for "
        "audit; empty for no recording. Must be writable by guacd.",
    ).tag(config=True)

    guacd_host = Unicode(
        "",
        help="Address of a running guacd (for example the sidecar at 127.0.0.1 in a "
        "Kubernetes pod). Empty: each session starts its own guacd on the loopback.",
    ).tag(config=True)

    guacd_port = Integer(4822, help="Port of the guacd named by guacd_host.").tag(config=True)

    max_width = Integer(3840, help="Widest desktop a browser may ask for, in pixels.").tag(config=True)

    max_height = Integer(2160, help="Tallest desktop a browser may ask for, in pixels.").tag(config=True)

    timezone = Unicode("UTC", help="Time zone of the sandbox desktop (IANA name).").tag(config=True)

    xvnc = Unicode("Xvnc", help="TigerVNC's X server program.").tag(config=True)

    guacd = Unicode("guacd", help="guacd program, used when guacd_host is empty.").tag(config=True)

    window_manager = Unicode(
        "openbox", help="Window manager program run in the desktop."
    ).tag(config=True)

    kiosk_browser = Unicode(
        "chromium", help="Browser shown full screen in the desktop (Chromium or Chrome)."
    ).tag(config=True)

    def cli_args(self) -> list[str]:
        """These settings as ``--SandboxSettings.name=value`` arguments."""
        args = []
        for name in sorted(self.trait_names(config=True)):
            value = getattr(self, name)
            if isinstance(value, bool):
                value = "True" if value else "False"
            args.append(f"--SandboxSettings.{name}={value}")
        return args

    def programs(self) -> list[str]:
        """Programs a local sandbox session needs."""
        progs = [self.xvnc, self.window_manager, self.kiosk_browser]
        if not self.guacd_host:
            progs.insert(0, self.guacd)
        return progs
