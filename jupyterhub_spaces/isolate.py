"""Run a local session in a bubblewrap sandbox, as an unprivileged account.

The local spawner builds the command with :func:`sandbox_argv` (pure: plain data in,
argv out) from a :class:`Sandbox`. The session then runs:

* in new pid, IPC and UTS namespaces (``bwrap --unshare-pid --unshare-ipc
  --unshare-uts``), in its own session (``--new-session``: no terminal injection into
  the hub's), and ends with the hub (``--die-with-parent``) unless sessions must
  outlive a hub restart (``JupyterHub.cleanup_servers = False``);
* in a file system made only of: the system (``/usr``, ``/etc`` and the ``/bin``,
  ``/lib*`` links or directories) read-only, its own ``/proc``, a minimal ``/dev``, a
  private ``/tmp``, the Python runtimes it needs read-only, its space's data and Asset
  database read-only, its own home and the space databases its role may write
  read-write. Nothing else of the hub's machine exists in it: not the state
  directory, not the checkout, not other homes;
* as its own account (``setpriv --reuid --regid --groups``), with every capability
  dropped (effective, permitted, inheritable, ambient and bounding sets) and
  ``no_new_privs`` set, so no set-uid program can give any back.

Why setpriv rather than bwrap's own ``--uid``: bwrap changes the uid only inside a
new user namespace, where host files are still reached as the uid that started bwrap
(root here). setpriv (util-linux) switches the real uid on the host, so the kernel
checks every file access against the session's own account.

The network is kept: the session listens on its loopback port for the hub's proxy.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass

#: directories of the system bound read-only (when they are directories) or recreated
#: as the same symlinks (merged /usr)
SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")

#: what the sandbox itself provides (never bound from the host)
SANDBOX_ROOTS = ("/", "/proc", "/dev", "/dev/shm", "/tmp")


class IsolationError(RuntimeError):
    """Sessions cannot be isolated on this host; the message says what to install."""


@dataclass(frozen=True)
class Sandbox:
    """What one session's sandbox is made of (host paths, bound at the same path)."""

    uid: int
    gid: int
    #: supplementary groups of the session (e.g. its space's database group)
    groups: tuple[int, ...]
    #: the session's home: read-write, its working directory
    home: str
    #: system layout: (path, symlink target or "" for a directory bound read-only)
    system: tuple[tuple[str, str], ...]
    #: bound read-only at the same path (Python runtimes, the space's Asset database)
    read_only: tuple[str, ...] = ()
    #: bound read-write at the same path (space databases the role may write)
    read_write: tuple[str, ...] = ()
    #: (source, target): read-only binds of data at another path (the space's assets)
    binds: tuple[tuple[str, str], ...] = ()
    hostname: str = "space"
    #: end the sandbox when the hub ends (not when sessions must outlive a restart)
    die_with_parent: bool = True
    bwrap: str = "bwrap"
    setpriv: str = "/usr/bin/setpriv"


def _ancestors(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def sandbox_argv(box: Sandbox, command: list[str]) -> list[str]:
    """The ``bwrap ... setpriv ... command`` argv that runs ``command`` in ``box``.

    Raises ValueError for a sandbox that would run as root or bind a relative path.
    """
    if box.uid == 0 or box.gid == 0 or 0 in box.groups:
        raise ValueError("a session never runs as root (uid 0) or with group 0")
    mounts: list[tuple[str, str, str]] = []  # (option, source, target)
    for path, link in box.system:
        mounts.append(("--symlink", link, path) if link else ("--ro-bind", path, path))
    mounts += [("--proc", "", "/proc"), ("--dev", "", "/dev")]
    binds = [("--ro-bind", p, p) for p in box.read_only]
    binds += [("--bind", box.home, box.home)]
    binds += [("--bind", p, p) for p in box.read_write]
    binds += [("--ro-bind", src, dst) for src, dst in box.binds]
    for _, src, dst in binds:
        if not (os.path.isabs(src) and os.path.isabs(dst)):
            raise ValueError(f"sandbox paths must be absolute: {src!r} -> {dst!r}")
    # parents before children: a bind inside the home comes after the home
    binds.sort(key=lambda b: (b[2].count("/"), b[2]))
    argv = [
        box.bwrap,
        "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--hostname", box.hostname,
        *(["--die-with-parent"] if box.die_with_parent else []),
        "--new-session",
    ]
    known = set(SANDBOX_ROOTS) | {path for path, _ in box.system}
    for option, src, dst in mounts:
        argv += [option, dst] if not src else [option, src, dst]
    # the session's own /tmp and /dev/shm, writable by it as by everyone (sticky)
    argv += ["--perms", "1777", "--tmpfs", "/dev/shm", "--perms", "1777", "--tmpfs", "/tmp"]
    for option, src, dst in binds:
        for parent in _ancestors(dst):
            if parent in known or any(parent.startswith(s + "/") for s, _ in box.system):
                continue
            # a directory the sandbox makes so the account can walk to the bind but
            # not list it; inside the home (where the data appears) it may list it
            mode = "0755" if parent.startswith(box.home + "/") else "0711"
            argv += ["--perms", mode, "--dir", parent]
            known.add(parent)
        argv += [option, src, dst]
        known.add(dst)
    argv += ["--chdir", box.home, "--", box.setpriv, "--reuid", str(box.uid), "--regid", str(box.gid)]
    argv += ["--groups", ",".join(str(g) for g in box.groups)] if box.groups else ["--clear-groups"]
    argv += ["--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return argv + list(command)


def sandboxed_command(bwrap_pid: int) -> int | None:
    """The pid of the command a running bwrap runs (bwrap's init's first child), to
    signal it directly: bwrap passes no signal on."""
    try:
        if os.path.basename(os.readlink(f"/proc/{bwrap_pid}/exe")) != "bwrap":
            return None
        with open(f"/proc/{bwrap_pid}/task/{bwrap_pid}/children") as f:
            init = int(f.read().split()[0])
        with open(f"/proc/{init}/task/{init}/children") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def host_system() -> tuple[tuple[str, str], ...]:
    """This host's :data:`SYSTEM_DIRS` as (path, symlink target or "")."""
    found = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            found.append((path, os.readlink(path)))
        elif os.path.isdir(path):
            found.append((path, ""))
    return tuple(found)


def missing() -> str:
    """Why sessions cannot be isolated here ("" when they can)."""
    if not sys.platform.startswith("linux"):
        return "isolated sessions need Linux"
    if os.geteuid() != 0:
        return (
            "isolated sessions need the hub to run as root (it creates the session "
            "accounts and starts each session's sandbox)"
        )
    if shutil.which("bwrap") is None:
        return "isolated sessions need bubblewrap: install the Debian package 'bubblewrap'"
    if not os.access("/usr/bin/setpriv", os.X_OK):
        return "isolated sessions need setpriv: install the Debian package 'util-linux'"
    return ""


def runtime_paths() -> list[str]:
    """What a session needs read-only to run Python and its tools: the hub's
    virtualenv and base Python, this package when it lives outside them (an editable
    install), Superset's virtualenv and its base Python, and Superset's template
    metadata database. Only what exists, as real paths, without duplicates."""
    from .tools.catalog import cache_dir, superset_venv

    package = os.path.dirname(os.path.abspath(__file__))
    paths = [sys.prefix, sys.base_prefix, package]
    venv = superset_venv(os.environ)
    if os.path.isdir(venv):
        paths += [venv, *_venv_base(venv)]
    template = os.path.join(cache_dir(os.environ), "superset-metadata-template.db")
    if os.path.exists(template):
        paths.append(template)
    found: list[str] = []
    for path in paths:
        real = os.path.realpath(path)
        if os.path.exists(real) and not any(real == p or real.startswith(p + "/") for p in found):
            found = [p for p in found if not p.startswith(real + "/")] + [real]
    return found


def _venv_base(venv: str) -> list[str]:
    """The base Python installation of a virtualenv (its pyvenv.cfg 'home')."""
    try:
        with open(os.path.join(venv, "pyvenv.cfg")) as f:
            for line in f:
                key, _, value = line.partition("=")
                if key.strip() == "home" and value.strip():
                    return [os.path.dirname(os.path.realpath(value.strip()))]
    except OSError:
        pass
    return []
