"""Which tools a session offers and whether each can run (pure: env in, states out).

A tool is offered when the space selected it (``SPACES_TOOLS``, a comma-separated list
set by the session part; when it is unset, as in a plain Jupyter server, every tool is
offered) and its program is installed. A selected tool whose program is missing is
``unavailable`` with a reason that says what to install, so the launcher never shows an
entry that would fail with a 500.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass

#: Tools served through jupyter-server-proxy, in launcher order.
TOOL_NAMES = ("superset", "sqllab", "rstudio")

TITLES = {
    "jupyterlab": "JupyterLab",
    "superset": "Superset",
    "sqllab": "SQL Lab",
    "rstudio": "RStudio",
}

#: Where RStudio Server's packages put ``rserver`` when it is not on PATH.
RSTUDIO_BIN_DIRS = ("/usr/lib/rstudio-server/bin",)

SETUP_HINT = "scripts/setup.d/50-superset.sh"


def cache_dir(env: Mapping[str, str]) -> str:
    """The per-machine cache shared by checkouts (``$XDG_CACHE_HOME/jupyterhub-spaces``)."""
    base = env.get("XDG_CACHE_HOME") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".cache"
    )
    return os.path.join(base, "jupyterhub-spaces")


def superset_venv(env: Mapping[str, str]) -> str:
    """Superset's own virtualenv: ``SPACES_SUPERSET_VENV`` or the cache default."""
    return env.get("SPACES_SUPERSET_VENV") or os.path.join(cache_dir(env), "superset-venv")


def selected_tools(env: Mapping[str, str]) -> tuple[str, ...] | None:
    """The tools the space selected, or None when not in a spaces session."""
    raw = env.get("SPACES_TOOLS")
    if raw is None:
        return None
    return tuple(t for t in (s.strip() for s in raw.split(",")) if t)


def find_rserver(
    env: Mapping[str, str],
    which: Callable[..., str | None] = shutil.which,
    is_exe: Callable[[str], bool] = lambda p: os.path.isfile(p) and os.access(p, os.X_OK),
) -> str | None:
    """``rserver`` on PATH, else in RStudio Server's own bin directory."""
    found = which("rserver", path=env.get("PATH", os.defpath))
    if found:
        return found
    for d in RSTUDIO_BIN_DIRS:
        candidate = os.path.join(d, "rserver")
        if is_exe(candidate):
            return candidate
    return None


@dataclass(frozen=True)
class ToolState:
    """What the session can say about one tool before asking it anything."""

    name: str
    title: str
    #: the space selected it (or no space selection is known)
    selected: bool
    #: its program is installed
    available: bool
    #: why it is unavailable ("" when available)
    reason: str = ""
    #: the program that runs it (superset's gunicorn, rserver)
    program: str = ""


def superset_state(env: Mapping[str, str], is_exe=None) -> tuple[bool, str, str]:
    is_exe = is_exe or (lambda p: os.path.isfile(p) and os.access(p, os.X_OK))
    venv = superset_venv(env)
    program = os.path.join(venv, "bin", "gunicorn")
    if is_exe(program) and is_exe(os.path.join(venv, "bin", "superset")):
        return True, "", program
    return (
        False,
        f"Superset is not installed: no Superset virtualenv at {venv}. "
        f"Run {SETUP_HINT} (or set SPACES_SUPERSET_VENV to an existing one) and "
        "restart the space.",
        "",
    )


def tool_states(
    env: Mapping[str, str] | None = None, which=shutil.which, is_exe=None
) -> list[ToolState]:
    """The state of every proxied tool for a session with environment ``env``."""
    env = os.environ if env is None else env
    selection = selected_tools(env)

    def selected(name: str) -> bool:
        return selection is None or name in selection

    ok, reason, program = superset_state(env, is_exe)
    states = [
        ToolState("superset", TITLES["superset"], selected("superset"), ok, reason, program),
        ToolState(
            "sqllab",
            TITLES["sqllab"],
            selected("sqllab"),
            ok,
            reason.replace("Superset is", "SQL Lab (part of Superset) is", 1),
            program,
        ),
    ]
    kw = {} if is_exe is None else {"is_exe": is_exe}
    rserver = find_rserver(env, which=which, **kw)
    states.append(
        ToolState(
            "rstudio",
            TITLES["rstudio"],
            selected("rstudio"),
            rserver is not None,
            (
                ""
                if rserver
                else "RStudio Server is not installed in this session's image: no 'rserver' "
                "on PATH or in " + ", ".join(RSTUDIO_BIN_DIRS) + ". Ask your administrator to "
                "add RStudio Server to the image (see docs/tools.md)."
            ),
            rserver or "",
        )
    )
    return states
