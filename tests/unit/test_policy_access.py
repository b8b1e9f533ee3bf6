"""The access decision, rule by rule, table-driven, plus properties that hold for any catalog."""

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyterhub_spaces.policy import (
    AssetRef,
    Level,
    Mode,
    Role,
    SpaceSpec,
    Subscription,
    SubscriptionStatus,
    Target,
    decide,
    decided_until,
    requirements,
)

NOW = datetime(2026, 6, 1, 12, 0)
P1 = Target("product", 1, "retail")
P2 = Target("product", 2, "weather")
A1 = AssetRef(10, "stores", product_id=1, product_name="retail")
A2 = AssetRef(20, "daily", product_id=2, product_name="weather")
A1T = Target("asset", 10, "stores")
A2T = Target("asset", 20, "daily")

SPACE = SpaceSpec(
    id=7,
    owner="alice",
    products=(P1,),
    assets=(A2,),
    collaborators=(("bob", Role.editor), ("carol", Role.viewer)),
)


def sub(user, target, level="full", status="active", expires=None):
    return Subscription(user, target, Level(level), SubscriptionStatus(status), expires)


@pytest.mark.parametrize(
    "user, subs, mode, missing",
    [
        # not a member: subscriptions do not matter
        ("dave", [sub("dave", P1), sub("dave", A2T)], Mode.not_member, []),
        # all full -> workbench
        ("alice", [sub("alice", P1), sub("alice", A2T)], Mode.workbench, []),
        # the asset is covered by a subscription to its product
        ("alice", [sub("alice", P1), sub("alice", P2)], Mode.workbench, []),
        # one spaces-level -> sandbox
        ("bob", [sub("bob", P1, "spaces"), sub("bob", A2T)], Mode.sandbox, []),
        # missing one -> locked, named
        ("carol", [sub("carol", P1)], Mode.locked, [("asset", 20, "missing")]),
        # nothing at all -> both missing
        ("carol", [], Mode.locked, [("product", 1, "missing"), ("asset", 20, "missing")]),
        # expired
        (
            "alice",
            [sub("alice", P1, expires=NOW - timedelta(seconds=1)), sub("alice", A2T)],
            Mode.locked,
            [("product", 1, "expired")],
        ),
        # not yet expired
        (
            "alice",
            [sub("alice", P1, expires=NOW + timedelta(days=1)), sub("alice", A2T)],
            Mode.workbench,
            [],
        ),
        # revoked and requested are not access
        ("alice", [sub("alice", P1, status="revoked"), sub("alice", A2T)], Mode.locked,
         [("product", 1, "revoked")]),
        ("alice", [sub("alice", P1, status="requested"), sub("alice", A2T)], Mode.locked,
         [("product", 1, "requested")]),
        # someone else's subscriptions do not count
        ("alice", [sub("bob", P1), sub("bob", A2T)], Mode.locked,
         [("product", 1, "missing"), ("asset", 20, "missing")]),
        # full on the product beats spaces on the asset
        ("bob", [sub("bob", P1), sub("bob", A2T, "spaces"), sub("bob", P2)], Mode.workbench, []),
        # a subscription to another asset of the product does not cover the product
        ("alice", [sub("alice", A1T), sub("alice", A2T)], Mode.locked, [("product", 1, "missing")]),
    ],
)
def test_decision(user, subs, mode, missing):
    decision = decide(user, SPACE, subs, NOW)
    assert decision.mode == mode
    assert [(m.target.kind, m.target.id, m.reason) for m in decision.missing] == missing
    assert decision.can_activate == (mode in (Mode.sandbox, Mode.workbench))


def test_role_and_reasons_are_explained():
    locked = decide("carol", SPACE, [sub("carol", P1)], NOW)
    assert locked.role == Role.viewer
    assert "asset 'daily'" in locked.reason and "request one" in locked.reason
    sandbox = decide("bob", SPACE, [sub("bob", P1, "spaces"), sub("bob", A2T)], NOW)
    assert sandbox.sandboxed_by == (P1,)
    assert "product 'retail'" in sandbox.reason
    assert decide("dave", SPACE, [], NOW).reason == "dave is not a member of this space"


# Derived assets: D1 made from asset A1 only, D2 made from product P2 (and asset A1).
D_FROM_ASSET = AssetRef(100, "d1", upstream_assets=(A1,))
D_FROM_PRODUCT = AssetRef(200, "d2", upstream_products=(P2,), upstream_assets=(A1,))


@pytest.mark.parametrize(
    "asset, enforced, subs, mode, missing",
    [
        # enforced: every contributing source is needed
        (D_FROM_ASSET, True, [], Mode.locked, [("asset", 10, "missing")]),
        (D_FROM_ASSET, True, [sub("alice", P1)], Mode.workbench, []),
        (D_FROM_ASSET, True, [sub("alice", A1T, "spaces")], Mode.sandbox, []),
        (D_FROM_PRODUCT, True, [sub("alice", P1)], Mode.locked, [("product", 2, "missing")]),
        (D_FROM_PRODUCT, True, [sub("alice", P1), sub("alice", P2)], Mode.workbench, []),
        # not enforced: derived from assets only needs nothing more
        (D_FROM_ASSET, False, [], Mode.workbench, []),
        # ...but a whole product that went into it still counts
        (D_FROM_PRODUCT, False, [], Mode.locked, [("product", 2, "missing")]),
        (D_FROM_PRODUCT, False, [sub("alice", P2, "spaces")], Mode.sandbox, []),
    ],
)
def test_derived_asset_lineage_rule(asset, enforced, subs, mode, missing):
    space = SpaceSpec(id=1, owner="alice", assets=(asset,))
    decision = decide("alice", space, subs, NOW, lineage_enforced=enforced)
    assert decision.mode == mode
    assert [(m.target.kind, m.target.id, m.reason) for m in decision.missing] == missing
    for m in decision.missing:
        assert m.via == Target("asset", asset.id, asset.name)


def test_requirements_are_not_repeated():
    space = SpaceSpec(id=1, owner="a", products=(P1, P1), assets=(A1, A1, D_FROM_ASSET))
    keys = [r.target.key for r in requirements(space)]
    assert keys == [("product", 1), ("asset", 10)]


# --- properties over random catalogs ---------------------------------------------------

targets = st.builds(
    Target, st.sampled_from(["product", "asset"]), st.integers(1, 4), st.just("")
)
subscriptions = st.builds(
    Subscription,
    st.sampled_from(["alice", "bob"]),
    targets,
    st.sampled_from(list(Level)),
    st.sampled_from(list(SubscriptionStatus)),
    st.sampled_from([None, NOW - timedelta(days=1), NOW + timedelta(hours=1), NOW + timedelta(days=1)]),
)
spaces = st.builds(
    SpaceSpec,
    id=st.just(1),
    owner=st.just("alice"),
    products=st.lists(st.builds(Target, st.just("product"), st.integers(1, 4)), max_size=3).map(tuple),
    assets=st.lists(
        st.builds(AssetRef, st.integers(1, 4), st.just(""), st.one_of(st.none(), st.integers(1, 4))),
        max_size=3,
    ).map(tuple),
    collaborators=st.just((("bob", Role.viewer),)),
)


@given(spaces, st.lists(subscriptions, max_size=12))
def test_properties_of_any_decision(space, subs):
    for user in ("alice", "bob"):
        decision = decide(user, space, subs, NOW)
        # locked exactly when something is missing, and then it says what
        assert (decision.mode == Mode.locked) == bool(decision.missing)
        mine = [s for s in subs if s.user == user]
        active_full = {s.target.key for s in mine if s.is_active(NOW) and s.level == Level.full}
        # with every product and asset fully subscribed, it is always a workbench
        needed = {p.key for p in space.products} | {("asset", a.id) for a in space.assets}
        if needed <= active_full:
            assert decision.mode == Mode.workbench
        # adding a spaces-level subscription never turns a workbench into a locked space
        if decision.mode == Mode.workbench:
            extra = Subscription(user, Target("product", 99), Level.spaces)
            assert decide(user, space, subs + [extra], NOW).mode == Mode.workbench
    assert decide("nobody", space, subs, NOW).mode == Mode.not_member


@given(spaces, st.lists(subscriptions, max_size=12), st.integers(0, 2 * 24 * 60))
def test_a_decision_holds_until_decided_until(space, subs, minutes):
    """Answers are kept until ``decided_until``: no decision may change before it."""
    later = NOW + timedelta(minutes=minutes)
    until = decided_until(subs, NOW)
    if until is None or later < until:
        for user in ("alice", "bob"):
            assert decide(user, space, subs, later) == decide(user, space, subs, NOW)
