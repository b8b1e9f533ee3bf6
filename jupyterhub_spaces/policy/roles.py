"""What each collaborator role may do in a space.

One table, so the service, the spawner and the databases read the same answer.
"""

from __future__ import annotations

from .model import Role

#: action -> the roles allowed to take it
PERMISSIONS: dict[str, frozenset[Role]] = {
    "read": frozenset(Role),
    "activate": frozenset(Role),
    "edit": frozenset({Role.owner, Role.editor}),
    "manage_collaborators": frozenset({Role.owner}),
    "delete": frozenset({Role.owner}),
    "see_member_access": frozenset({Role.owner}),
    "write_collaborative": frozenset({Role.owner, Role.editor}),
    "read_collaborative": frozenset(Role),
    "write_publish": frozenset({Role.owner, Role.publisher}),
    "publish": frozenset({Role.owner, Role.publisher}),
}


def allowed(role: Role | None, action: str) -> bool:
    """Whether a member with ``role`` may take ``action`` (never for a non-member)."""
    if action not in PERMISSIONS:
        raise KeyError(f"unknown action {action!r}")
    return role is not None and Role(role) in PERMISSIONS[action]


def roles_allowed(action: str) -> list[str]:
    return sorted(r.value for r in PERMISSIONS[action])


def role_refusal(role: Role | str | None, action: str, space: str) -> str | None:
    """Why a member of ``space`` with ``role`` may not take ``action`` there, naming
    the roles that may and what to do; None when they may. (A non-member is refused
    as if the space did not exist, by the caller.)"""
    if allowed(role, action):
        return None
    held = Role(role).value if role is not None else "not a member"
    return (
        f"you are {held} of space '{space}'; to {action.replace('_', ' ')} "
        f"you must be {' or '.join(roles_allowed(action))}: ask its owner"
    )
