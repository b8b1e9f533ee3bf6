"""The judgements moved into policy/: whether a start is refused, whether a database
login still holds, whether a subscription is valid, and the role refusal. Each table
row is one hostile or ordinary case."""

from datetime import datetime, timedelta

import pytest

from jupyterhub_spaces.policy import (
    Level, Role, SpaceSpec, Subscription, SubscriptionStatus, Target, decide,
    subscription_active, subscription_expired,
)
from jupyterhub_spaces.policy.rights import why_revoke
from jupyterhub_spaces.policy.roles import role_refusal
from jupyterhub_spaces.policy.start import start_refusal

NOW = datetime(2026, 6, 1, 12, 0)
P1 = Target("product", 1, "retail")
SPACE = SpaceSpec(id=7, owner="alice", products=(P1,), assets=(),
                  collaborators=(("bob", Role.editor), ("eve", Role.viewer)))
PROFILES = ("small", "large")


def decision(user, status="active", expires=None):
    subs = [Subscription(user, P1, Level.full, SubscriptionStatus(status), expires)]
    return decide(user, SPACE, subs, NOW)


def refusal(user="bob", *, space_id=7, dec="default", profile="small", option=None):
    dec = decision(user) if dec == "default" else dec
    return start_refusal(user, "space-7", space_id, "Retail", profile, dec, PROFILES, "/spaces/", option)


def test_a_member_with_subscriptions_may_start():
    assert refusal() is None
    assert refusal(option="7") is None and refusal(option=7) is None


@pytest.mark.parametrize(
    "kwargs, status",
    [
        ({"space_id": None, "dec": None}, 404),  # no such space
        ({"user": "mallory"}, 404),  # not a member: same answer as no space
        ({"option": "8"}, 400),  # user_options naming another space
        ({"option": "7 OR 1=1"}, 400),
        ({"dec": decision("bob", status="revoked")}, 403),
        ({"dec": decision("bob", expires=NOW)}, 403),  # expired at this very moment
        ({"profile": "huge"}, 409),
    ],
)
def test_refused_starts(kwargs, status):
    refused = refusal(**kwargs)
    assert refused is not None and refused.status == status


def test_a_stranger_and_a_missing_space_read_alike():
    stranger = refusal("mallory")
    missing = start_refusal("mallory", "space-7", None, "", "", None, PROFILES, "/spaces/")
    assert stranger.message == missing.message and stranger.status == missing.status == 404


def test_a_locked_refusal_names_what_is_missing():
    refused = refusal(dec=decision("bob", status="requested"))
    assert refused.detail == {"missing": ["retail"]}


@pytest.mark.parametrize(
    "dec, role, run_running, stops",
    [
        (decision("bob"), "editor", None, False),
        (decision("bob"), "editor", True, False),
        (decision("bob"), "editor", False, True),  # the task run ended
        (decision("eve"), "editor", None, True),  # demoted since the login was issued
        (decision("bob", status="revoked"), "editor", None, True),
        (None, "editor", None, True),  # the space is gone
        (decision("mallory"), "viewer", None, True),  # no longer a member
    ],
)
def test_why_revoke(dec, role, run_running, stops):
    assert (why_revoke(dec, role, run_running) is not None) == stops


@pytest.mark.parametrize(
    "status, expires, active",
    [
        ("active", None, True),
        ("active", NOW + timedelta(seconds=1), True),
        ("active", NOW, False),
        ("active", NOW - timedelta(days=1), False),
        ("requested", None, False),
        ("revoked", NOW + timedelta(days=1), False),
        (SubscriptionStatus.active, None, True),
    ],
)
def test_subscription_validity_is_one_rule(status, expires, active):
    assert subscription_active(status, expires, NOW) is active
    assert Subscription("bob", P1, Level.full, SubscriptionStatus(status), expires).is_active(NOW) is active
    assert subscription_expired(expires, NOW) is (expires is not None and expires <= NOW)


@pytest.mark.parametrize(
    "role, action, refused",
    [
        (Role.owner, "delete", False),
        (Role.editor, "delete", True),
        (Role.viewer, "edit", True),
        (Role.publisher, "publish", False),
        (Role.editor, "publish", True),
        (None, "read", True),
    ],
)
def test_role_refusal(role, action, refused):
    message = role_refusal(role, action, "retail")
    assert (message is not None) == refused
    if refused:
        assert "retail" in message and "ask its owner" in message
