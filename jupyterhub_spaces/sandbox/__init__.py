"""Sandbox sessions: the space's desktop in the browser through Apache Guacamole, with
no way to take data out (no clipboard, file transfer, drives, printing or audio).

The spawner calls :func:`missing_programs` and :func:`gateway_command` when the policy
decides a session is a sandbox:

* :mod:`.protocol` - the Guacamole wire format;
* :mod:`.rules` - what crosses the tunnel and the locked connection parameters (pure);
* :mod:`.tunnel` - the WebSocket tunnel that does the guacd handshake itself;
* :mod:`.gateway` - the session's server process (page + tunnel, owner only);
* :mod:`.desktop` - Xvnc, window manager, JupyterLab and kiosk browser.

On Kubernetes the guacd sidecar and the pod's NetworkPolicy are built with the other
pod pieces in :mod:`jupyterhub_spaces.objects`.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from typing import TYPE_CHECKING

from traitlets.config import Config

from .config import SandboxSettings

if TYPE_CHECKING:  # pragma: no cover
    from ..session import SessionContext

def _settings(config=None) -> SandboxSettings:
    return SandboxSettings(config=config) if config is not None else SandboxSettings()


def missing_programs(settings: SandboxSettings | Config | None = None) -> list[str]:
    """Programs a local sandbox session needs that are not on PATH (empty when all
    are there). docs/sandbox.md says how to install each.

    ``settings`` may be the hub's config (for example the spawner's ``self.config``),
    so that a configured ``c.SandboxSettings.guacd_host`` is taken into account.
    """
    if not isinstance(settings, SandboxSettings):
        settings = _settings(settings)
    needed = [*settings.programs(), "vncpasswd"]
    missing = [program for program in needed if shutil.which(program) is None]
    if importlib.util.find_spec("jupyterlab") is None:
        missing.append("jupyterlab")
    return missing


def gateway_command(ctx: SessionContext) -> list[str]:
    """The command the spawner runs as the sandbox session's server.

    Site settings come from the hub's ``c.SandboxSettings`` (via the spawner's config)
    and are fixed on the command line; the user's request contributes nothing.
    """
    config = getattr(ctx.spawner, "config", None)
    settings = _settings(config)
    recording = f"{ctx.user}-{ctx.server}-${{GUAC_DATE}}-${{GUAC_TIME}}"
    if ctx.backend == "kubernetes" and not settings.guacd_host:
        # in a pod, guacd is the sidecar from objects.make_guacd_sidecar
        from ..objects import GUACD_PORT

        settings.guacd_host, settings.guacd_port = "127.0.0.1", GUACD_PORT
    return [
        sys.executable,
        "-m",
        "jupyterhub_spaces.sandbox.gateway",
        f"--SandboxGateway.space={ctx.display_name or ctx.slug}",
        f"--SandboxGateway.recording_name={recording}",
        *([f"--SandboxGateway.home={ctx.workdir}"] if ctx.workdir else []),
        *settings.cli_args(),
    ]


__all__ = ["SandboxSettings", "gateway_command", "missing_programs"]
