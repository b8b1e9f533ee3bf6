"""The database identity of a Task run (imported by the databases' reconciler too)."""

from __future__ import annotations

#: separates a run's database identity from its owner's name: JupyterHub user names
#: never hold a "/", so no user can be mistaken for a run
RUN_SEPARATOR = "/run-"


def run_identity(owner: str, run_id: int) -> str:
    return f"{owner}{RUN_SEPARATOR}{int(run_id)}"


def parse_identity(identity: str) -> tuple[str, int] | None:
    """``(owner, run id)`` of a run's database identity, None for a member's own."""
    owner, sep, run = identity.rpartition(RUN_SEPARATOR)
    if not sep or not run.isdigit():
        return None
    return owner, int(run)


def new_run_token(run_id: int) -> tuple[str, str]:
    """A run's own credential for the service's run endpoints, and its SHA-256 (kept
    with the run; the credential itself is never stored). It names the run, so the
    service finds the run, and through it the one space it may read."""
    import secrets

    token = f"{int(run_id)}.{secrets.token_urlsafe(32)}"
    return token, token_hash(token)


def token_hash(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


def token_run_id(token: str) -> int | None:
    """The run id a credential claims (checked against its hash by the caller)."""
    run, sep, secret = (token or "").partition(".")
    # at most 9 digits: any id a database integer column holds, never an overflow
    if not sep or not run.isdigit() or len(run) > 9 or not secret:
        return None
    return int(run)
