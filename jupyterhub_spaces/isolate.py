"""Run a local session in its own mount and process namespaces with its data read-only.

Usage (the local spawner builds this command)::

    python -m jupyterhub_spaces.isolate '<json plan>' command [args...]

The plan is ``{"binds": [[source, target], ...], "protect": [dir, ...]}``. Before the
command runs, every ``source`` directory is bind-mounted read-only at ``target`` and
every ``protect`` directory is remounted read-only over itself, so the data cannot be
changed through any path, not even by root: the kernel refuses the write
(``EROFS``) whatever the file permissions say. The command then runs without the
capabilities that could undo this (remounting, raw devices, file handles, tracing other
processes), and with its own ``/proc`` so it cannot reach into the hub's view of the
file system through ``/proc/<pid>/root``.

Process layout: this process (the one the hub started and signals) unshares the
namespaces and forks an init (pid 1 of the new pid namespace) that mounts, forks the
command, forwards signals to it and reaps orphans. When the command exits, the init
exits with its status, the kernel ends anything left in the namespace, and this process
exits with the same status.

Needs root (or CAP_SYS_ADMIN); :func:`can_isolate` tells whether it will work here.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_CAPBSET_DROP = 24

#: capabilities a session never keeps: each could lift the read-only views
DROPPED_CAPS = {
    "CAP_DAC_READ_SEARCH": 2,  # open_by_handle_at reaches files outside the mounts
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_PTRACE": 19,  # reaching into processes outside the namespace
    "CAP_SYS_ADMIN": 21,  # mount / remount read-write
    "CAP_MKNOD": 27,  # raw block devices
}

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            None,
        ),
        f"mount {source} on {target}",
    )


def _kept_flags(path: str) -> int:
    """Per-mount flags a read-only remount must keep (the kernel refuses to drop
    locked ones)."""
    st = os.statvfs(path)
    flags = 0
    for vfs_flag, ms_flag in (
        (os.ST_NOSUID, MS_NOSUID),
        (os.ST_NODEV, MS_NODEV),
        (os.ST_NOEXEC, MS_NOEXEC),
    ):
        if st.f_flag & vfs_flag:
            flags |= ms_flag
    return flags


def bind_readonly(source: str, target: str) -> None:
    """Mount ``source`` at ``target`` read-only (in the current mount namespace)."""
    _mount(source, target, None, MS_BIND | MS_REC)
    _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _kept_flags(target))


def can_isolate() -> bool:
    """Whether this process may create mount namespaces (root or CAP_SYS_ADMIN)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << DROPPED_CAPS["CAP_SYS_ADMIN"]))
    except OSError:
        return False
    return False


def _forward_to(pid: int) -> None:
    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in FORWARDED:
        signal.signal(sig, forward)


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _init(plan: dict, command: list[str]) -> int:
    """pid 1 of the session's namespace: set up the views, run and reap."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for directory in plan.get("protect", []):
        bind_readonly(directory, directory)
    for source, target in plan.get("binds", []):
        os.makedirs(target, exist_ok=True)
        bind_readonly(source, target)
    # a /proc of this namespace only: the hub's processes are not visible
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)

    def drop_caps():
        for cap in DROPPED_CAPS.values():
            _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)

    child = subprocess.Popen(command, preexec_fn=drop_caps)
    _forward_to(child.pid)
    status = None
    while True:
        try:
            pid, raw = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == child.pid:
            status = _exit_code(raw)
            break
    return 0 if status is None else status


def run(plan: dict, command: list[str]) -> int:
    """Unshare, fork the namespace's init and wait for it, passing signals on."""
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID), "unshare mount and pid namespaces")
    pid = os.fork()
    if pid == 0:  # pid 1 of the new namespace
        try:
            code = _init(plan, command)
        except BaseException as e:  # report why the session could not start
            print(f"jupyterhub-spaces: cannot isolate the session: {e}", file=sys.stderr)
            code = 70
        os._exit(code)
    _forward_to(pid)
    while True:
        try:
            _, raw = os.waitpid(pid, 0)
            return _exit_code(raw)
        except InterruptedError:
            continue


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(run(json.loads(argv[0]), argv[1:]))


if __name__ == "__main__":
    main()
