"""Validation of a space spec as a user submits it: field errors, no IO.

The service turns a non-empty result into a 422 whose ``fields`` name each problem,
so the Spaces app can show the message next to the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .model import TOOLS, Role

MAX_DISPLAY_NAME = 80


def validate_profile(
    profile: str, workers: int, profiles: Mapping[str, Mapping]
) -> dict[str, str]:
    """Check a machine profile name and worker count against the admin's profiles.

    ``profiles`` maps a profile name to a dict with at least ``min_workers`` and
    ``max_workers`` (defaults 0 and 0).
    """
    errors: dict[str, str] = {}
    if profile not in profiles:
        choices = ", ".join(sorted(profiles)) or "(none configured)"
        errors["profile"] = f"unknown machine profile {profile!r}: choose one of {choices}"
        return errors
    lo = int(profiles[profile].get("min_workers", 0))
    hi = int(profiles[profile].get("max_workers", 0))
    if isinstance(workers, bool) or not isinstance(workers, int) or not lo <= workers <= hi:
        errors["workers"] = f"workers must be a whole number from {lo} to {hi} for {profile!r}"
    return errors


def validate_spec(
    display_name: str,
    tools: Sequence[str],
    profile: str,
    workers: int,
    profiles: Mapping[str, Mapping],
) -> dict[str, str]:
    """Field errors of a space spec (empty when it is valid)."""
    errors: dict[str, str] = {}
    if not isinstance(display_name, str) or not display_name.strip():
        errors["display_name"] = "give the space a name"
    elif len(display_name) > MAX_DISPLAY_NAME:
        errors["display_name"] = f"the name is longer than {MAX_DISPLAY_NAME} characters"
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        errors["tools"] = f"unknown tool(s) {', '.join(map(str, unknown))}: choose from {', '.join(TOOLS)}"
    elif not tools:
        errors["tools"] = f"choose at least one tool from {', '.join(TOOLS)}"
    errors.update(validate_profile(profile, workers, profiles))
    return errors


def validate_role(role: str) -> str | None:
    """An error message for a role that does not exist, else None."""
    names = [r.value for r in Role]
    if role not in names:
        return f"unknown role {role!r}: choose one of {', '.join(names)}"
    return None


def over_space_limit(owned: int, limit: int) -> str | None:
    """The refusal for creating one more space when ``owned`` already exist."""
    if owned >= limit:
        return (
            f"you already own {owned} spaces, the most allowed is {limit}: "
            "delete a space you no longer need before creating another"
        )
    return None


def one_active_conflict(requested: str, active: Sequence[str]) -> str | None:
    """The refusal for starting ``requested`` while other spaces are active or starting."""
    others = [name for name in active if name != requested]
    if others:
        return (
            f"space {others[0]!r} is already active: suspend it first, "
            "or switch (activate with switch=true) to suspend it and start this one"
        )
    return None
