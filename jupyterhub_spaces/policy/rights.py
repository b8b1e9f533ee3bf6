"""Whether what a member was given still holds: one rule for running sessions and
for issued database logins.

A session starts in a mode (workbench or sandbox) and a database login is issued for
a role. When the catalog changes under them (a member removed or demoted, a
subscription revoked, lowered, expired, a product added that the member lacks) the
service must take back what the rules no longer give, before it answers the request
that made the change. :func:`why_stop` says whether, and why, from the current
decision and what was given; :func:`narrows` says whether a role change takes any
right away.
"""

from __future__ import annotations

from .model import Decision, Role
from .roles import PERMISSIONS


def role_rights(role: Role | str | None) -> frozenset[str]:
    """Every action a member with ``role`` may take (none for a non-member)."""
    if role is None:
        return frozenset()
    role = Role(role)
    return frozenset(action for action, roles in PERMISSIONS.items() if role in roles)


def narrows(old: Role | str | None, new: Role | str | None) -> bool:
    """Whether moving a member from role ``old`` to ``new`` takes any right away.

    Roles are not a ladder (an editor writes the Collaborative database, a publisher
    the Publish one), so editor -> publisher narrows as much as editor -> viewer.
    """
    return not role_rights(old) <= role_rights(new)


def why_stop(
    decision: Decision | None,
    *,
    mode: str | None = None,
    role: Role | str | None = None,
) -> str | None:
    """Why what was given (a session started in ``mode``, a login issued for
    ``role``) no longer holds under ``decision``; None while it does.

    ``decision`` is None when the space itself is gone. A session whose mode the rules
    now give differently stops (a workbench must not go on once a sandbox is due, and
    the reverse is restarted too so the session matches the rules); a login stops when
    the member's current role lacks a right of the role it was issued for. A wider
    role takes effect at the next activation.
    """
    if decision is None:
        return "the space was deleted"
    if decision.role is None:
        return "no longer a member of the space"
    if not decision.can_activate:
        return decision.reason
    if mode and decision.mode.value != mode:
        return f"the session started as {mode} but the rules now give {decision.mode.value}: activate again"
    if role is not None and narrows(role, decision.role):
        return f"role changed from {Role(role).value} to {decision.role.value}: activate again"
    return None


def why_revoke(
    decision: Decision | None,
    role: Role | str | None,
    run_running: bool | None = None,
) -> str | None:
    """Why a database login issued for ``role`` no longer holds under ``decision``;
    None while it does. ``run_running`` is None for a member's own login; for the
    login of a task run, whether that run still runs (a run's login lives while its
    run runs, with its owner's rights)."""
    if run_running is False:
        return "the task run ended"
    return why_stop(decision, role=role)
