"""A Task run's command, wrapped the way a local session is: as its owner's own
unprivileged account, in a bubblewrap sandbox (:mod:`jupyterhub_spaces.isolate`),
seeing the system and the Python runtimes read-only, its working directory as its home
and only the space databases its credentials may use (SQLite files bound by role; a
PostgreSQL login reaches the server through the kept network). The hub's state, the
checkout, Airflow's home and other homes do not exist inside it.
"""

from __future__ import annotations

import os
import shutil

from .. import accounts, isolate
from ..databases.base import Credentials
from ..databases.sqlite import sandbox_paths
from .config import SpacesTasks


class SandboxError(RuntimeError):
    """The run cannot be isolated on this host; the message says why."""


def sandboxed(cfg: SpacesTasks, owner: str, space_id: int, run_id: int, workdir: str, creds: Credentials,
              argv: list[str]) -> list[str]:
    """``argv`` wrapped in the run's sandbox (``workdir`` becomes the account's)."""
    why = isolate.missing()
    if why:
        raise SandboxError(f"cannot isolate the run on this host: {why} (c.SpacesTasks.isolate = False "
                           "runs tasks unisolated, as the hub's account: development only)")
    try:
        account = accounts.ensure_account(
            accounts.account_name(cfg.account_name_template, owner),
            tuple(cfg.account_uid_range) if cfg.account_uid_range else None,
            cfg.create_accounts,
        )
    except accounts.AccountError as e:
        raise SandboxError(str(e)) from e
    for dirpath, dirnames, filenames in os.walk(workdir):
        for name in (dirpath, *(os.path.join(dirpath, n) for n in (*dirnames, *filenames))):
            os.chown(name, account.uid, account.gid, follow_symlinks=False)
    binds = sandbox_paths(creds)
    box = isolate.Sandbox(
        uid=account.uid,
        gid=account.gid,
        groups=tuple(g for g in (accounts.group_id(accounts.space_group_name(space_id)),) if g),
        home=workdir,
        system=isolate.host_system(),
        read_only=tuple(isolate.runtime_paths()) + tuple(binds["read_only"]),
        read_write=tuple(binds["read_write"]),
        hostname=f"task-run-{int(run_id)}",
        bwrap=shutil.which("bwrap") or "bwrap",
    )
    return isolate.sandbox_argv(box, argv)
