"""Whether a user may start a space's session now, and the refusal when not.

One judgement for every way in: the hub's gate before it records anything, the
spawner in ``start()``, and the service's activate handler. A space that does not
exist and one the user is not a member of are refused alike (404, same words), so no
caller learns of another user's space.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from .model import Decision, Mode


@dataclass(frozen=True)
class Refusal:
    """A start the rules refuse: an HTTP ``status``, a ``message`` for the user and
    the ``detail`` the audit log records."""

    status: int
    message: str
    detail: dict = field(default_factory=dict)


def start_refusal(
    user: str,
    server: str,
    space_id: int | None,
    display_name: str,
    profile: str,
    decision: Decision | None,
    profiles: Collection[str],
    spaces_app_url: str,
    space_id_option: object = None,
) -> Refusal | None:
    """Why ``user`` may not start the server named ``server``, or None.

    ``space_id`` is the space the server name names (None: no such space), with its
    ``display_name`` and machine ``profile``; ``decision`` the user's decision in it
    (None when the space does not exist); ``profiles`` the machine profiles this hub
    offers; ``space_id_option`` what the request's ``user_options`` said the space was
    (None: nothing).
    """
    if space_id is None or decision is None or decision.mode == Mode.not_member:
        return Refusal(
            404,
            f"{user} has no space {server!r}: a session is a space you are a member "
            f"of; create or pick one in the Spaces app at {spaces_app_url}",
        )
    if space_id_option is not None and str(space_id_option) != str(space_id):
        return Refusal(
            400,
            f"user_options space_id {str(space_id_option)[:40]!r} does not match server "
            f"{server!r} (space {space_id}): a space's server is named by its id",
        )
    if decision.mode == Mode.locked:
        return Refusal(
            403,
            f"space {display_name!r} is {decision.reason}",
            {"missing": [m.target.name for m in decision.missing]},
        )
    if profile not in profiles:
        return Refusal(
            409,
            f"space {display_name!r} asks for machine profile {profile!r}, "
            f"which this hub does not offer ({', '.join(sorted(profiles))}): "
            "an editor of the space must pick another profile",
        )
    return None
