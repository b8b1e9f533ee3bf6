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
