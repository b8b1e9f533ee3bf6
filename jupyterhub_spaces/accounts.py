"""Unix accounts and groups of local sessions (the embedded default).

Each hub user's sessions run as an unprivileged account of their own, named from
:attr:`LocalSpaceSpawner.account_name_template` (``spaces-{username}``) and created on
first use with the system's own ``useradd`` (as JupyterHub's ``LocalAuthenticator``
creates users, and SystemdSpawner's dynamic users are system accounts): a system
account without a login shell or a home of its own (each space's home is made by
the spawner). Each space has a group (``spaces-space-<id>``) owning its SQLite
database files; a session gets it as a supplementary group, and the sandbox's
read-only or read-write bind decides what the member's role may do with them.

No account or group here is ever root: uid 0 and gid 0 are refused wherever they
come from (the template, a site's mapping callable, an existing account).
"""

from __future__ import annotations

import grp
import hashlib
import os
import stat
import pwd
import re
import subprocess
import threading
from dataclasses import dataclass

#: useradd's limit on account names
NAME_MAX = 32

_lock = threading.Lock()


class AccountError(RuntimeError):
    """An account or group could not be found or made; the message says why."""


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


def safe_name(raw: str) -> str:
    """``raw`` as a valid, unambiguous account or group name.

    Lowercase letters, digits and ``-`` only, starting with a letter, at most 32
    characters. When anything had to change, a short hash of ``raw`` is appended, so
    two hub users never map to one account (``a.b`` and ``a-b`` differ).
    """
    cleaned = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = "u-" + cleaned
    if cleaned == raw and len(raw) <= NAME_MAX:
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{cleaned[: NAME_MAX - 9].rstrip('-')}-{digest}"


def account_name(template: str, username: str) -> str:
    """The session account of hub user ``username`` from ``template``."""
    return safe_name(template.format(username=username))


def space_group_name(space_id: int) -> str:
    return f"spaces-space-{int(space_id)}"


def _checked(account: Account) -> Account:
    if account.uid == 0 or account.gid == 0:
        raise AccountError(
            f"account {account.name!r} is root (uid {account.uid}, gid {account.gid}): "
            "sessions never run as root; fix LocalSpaceSpawner.account_name_template "
            "or account_mapper"
        )
    return account


def lookup(name: str) -> Account | None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return _checked(Account(entry.pw_name, entry.pw_uid, entry.pw_gid))


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AccountError(f"{' '.join(cmd)} failed: {result.stderr.strip() or result.returncode}")


def useradd_command(name: str, uid_range: tuple[int, int] | None = None) -> list[str]:
    """The ``useradd`` command making session account ``name`` (pure).

    Without ``uid_range`` a system account (``--system``, the distribution's system
    uid range); with it, an ordinary account whose uid and gid are taken from
    ``uid_range`` (``UID_MIN``/``UID_MAX`` overrides of login.defs).
    """
    cmd = ["useradd", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
           "--shell", "/usr/sbin/nologin", "--comment", "jupyterhub-spaces session"]
    if uid_range:
        low, high = uid_range
        if not 0 < low <= high:
            raise AccountError(f"account uid range {uid_range!r} must be two uids, 0 < low <= high")
        for key in ("UID", "GID"):
            cmd += ["-K", f"{key}_MIN={low}", "-K", f"{key}_MAX={high}"]
    else:
        cmd.append("--system")
    return cmd + ["--", name]


def ensure_account(name: str, uid_range: tuple[int, int] | None = None, create: bool = True) -> Account:
    """The account ``name``, created first when missing (and ``create``)."""
    with _lock:  # useradd locks /etc/passwd and fails rather than waits
        found = lookup(name)
        if found is not None:
            return found
        if not create:
            raise AccountError(
                f"the session account {name!r} does not exist: create it, or let the "
                "spawner create accounts (LocalSpaceSpawner.create_accounts = True)"
            )
        _run(useradd_command(name, uid_range))
        found = lookup(name)
    if found is None:
        raise AccountError(f"useradd made no account {name!r}")
    return found


def ensure_group(name: str) -> int:
    """The gid of group ``name``, a system group created first when missing."""
    with _lock:
        try:
            gid = grp.getgrnam(name).gr_gid
        except KeyError:
            _run(["groupadd", "--system", "--", name])
            gid = grp.getgrnam(name).gr_gid
    if gid == 0:
        raise AccountError(f"group {name!r} is group 0: refused")
    return gid


def group_id(name: str) -> int | None:
    """The id of group ``name``, None when there is no such group."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def make_home(home: str, account: Account) -> None:
    """Make ``home`` the private home of ``account`` (0700); its parents private to
    the hub (0700). A home left by an older, unisolated session is handed over to the
    account, except files with other links (a hard link to a hub file must not
    become the account's)."""
    parent = os.path.dirname(home)
    os.makedirs(parent, 0o700, exist_ok=True)
    try:
        os.mkdir(home, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(home)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise AccountError(f"the session's home {home} is not a directory")
    if st.st_uid != account.uid:
        for root, dirs, files in os.walk(home):
            for name in dirs + files:
                path = os.path.join(root, name)
                entry = os.lstat(path)
                if stat.S_ISDIR(entry.st_mode) or (stat.S_ISREG(entry.st_mode) and entry.st_nlink == 1):
                    os.lchown(path, account.uid, account.gid)
        os.chown(home, account.uid, account.gid)
    os.chmod(home, 0o700)
