"""Which users a user may see and invite: those of their own organization, and of the
organizations an admin made visible to it."""

from __future__ import annotations

from collections.abc import Collection


def org_can_see(viewer_org: str, other_org: str, grants: Collection[tuple[str, str]]) -> bool:
    """``grants`` holds ``(seer, seen)`` pairs of organization names set by an admin.

    Visibility is not symmetric: an admin may let org A see org B and not the reverse.
    """
    return viewer_org == other_org or (viewer_org, other_org) in grants


def visible_orgs(viewer_org: str, grants: Collection[tuple[str, str]]) -> set[str]:
    """Every organization whose users ``viewer_org``'s users may see."""
    return {viewer_org} | {seen for seer, seen in grants if seer == viewer_org}
