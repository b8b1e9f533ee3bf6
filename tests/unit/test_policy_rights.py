"""The one "does what was given still hold?" rule the session guard and the database
reconcile share, and which role changes take rights away."""

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyterhub_spaces.policy import Level, Role, SpaceSpec, Subscription, SubscriptionStatus, Target, decide
from jupyterhub_spaces.policy.rights import narrows, role_rights, why_stop
from jupyterhub_spaces.policy.roles import PERMISSIONS

NOW = datetime(2026, 6, 1, 12, 0)
P1 = Target("product", 1, "retail")


def space(role_of_bob=Role.editor):
    return SpaceSpec(id=7, owner="alice", products=(P1,), assets=(), collaborators=(("bob", role_of_bob),))


def decision(user="bob", level="full", status="active", expires=None, role_of_bob=Role.editor):
    subs = [Subscription(user, P1, Level(level), SubscriptionStatus(status), expires)]
    return decide(user, space(role_of_bob), subs, NOW)


@pytest.mark.parametrize(
    "old, new, narrower",
    [
        ("editor", "viewer", True),
        ("editor", "publisher", True),  # loses write_collaborative, gains write_publish
        ("publisher", "editor", True),
        ("publisher", "viewer", True),
        ("owner", "editor", True),
        ("viewer", "editor", False),
        ("viewer", "publisher", False),
        ("editor", "editor", False),
        ("editor", "owner", False),
        ("viewer", None, True),  # removal takes even reading away
        (None, "viewer", False),
        ("editor", None, True),
    ],
)
def test_narrows(old, new, narrower):
    assert narrows(old, new) is narrower


@given(st.sampled_from(list(Role) + [None]), st.sampled_from(list(Role) + [None]))
def test_narrows_iff_some_action_is_lost(old, new):
    lost = [
        action for action, roles in PERMISSIONS.items()
        if old is not None and old in roles and (new is None or new not in roles)
    ]
    assert narrows(old, new) is bool(lost)
    assert role_rights(new) >= role_rights(old) or narrows(old, new)


@pytest.mark.parametrize(
    "made, given_mode, given_role, reason",
    [
        # the space is gone
        (lambda: None, "workbench", None, "the space was deleted"),
        # removed from the space
        (lambda: decision(user="dave"), "workbench", None, "no longer a member of the space"),
        (lambda: decision(user="dave"), None, "editor", "no longer a member of the space"),
        # revoked, expired: locked
        (lambda: decision(status="revoked"), "workbench", None, "locked: "),
        (lambda: decision(expires=NOW - timedelta(seconds=1)), None, "viewer", "locked: "),
        # lowered to spaces: a workbench session stops, a sandbox one goes on
        (lambda: decision(level="spaces"), "workbench", None, "the session started as workbench but the rules now give sandbox"),
        (lambda: decision(level="spaces"), "sandbox", None, None),
        # raised to full: the sandbox session restarts as a workbench
        (lambda: decision(), "sandbox", None, "the session started as sandbox but the rules now give workbench"),
        # a demoted login stops, a promoted one goes on until the next activation
        (lambda: decision(role_of_bob=Role.viewer), None, "editor", "role changed from editor to viewer"),
        (lambda: decision(role_of_bob=Role.publisher), "workbench", "editor", "role changed from editor to publisher"),
        (lambda: decision(role_of_bob=Role.editor), "workbench", "viewer", None),
        # nothing changed
        (lambda: decision(), "workbench", "editor", None),
        (lambda: decision(expires=NOW + timedelta(seconds=1)), "workbench", "editor", None),
    ],
)
def test_why_stop(made, given_mode, given_role, reason):
    found = why_stop(made(), mode=given_mode, role=given_role)
    if reason is None:
        assert found is None
    else:
        assert found is not None and found.startswith(reason), found


@given(
    st.sampled_from(list(Role)),
    st.sampled_from(list(Role)),
    st.sampled_from(["full", "spaces"]),
    st.sampled_from(["active", "revoked", "requested"]),
    st.sampled_from(["workbench", "sandbox"]),
)
def test_what_still_holds_is_what_the_rules_give(given_role, role_now, level, status, given_mode):
    """Nothing survives that the current decision would not give: the mode is the
    decision's and the role has no right the current role lacks."""
    d = decision(level=level, status=status, role_of_bob=role_now)
    if why_stop(d, mode=given_mode, role=given_role) is None:
        assert d.can_activate
        assert d.mode.value == given_mode
        assert role_rights(given_role) <= role_rights(d.role)
