"""Data carries its origin: a space's taint in the access decision and in lineage.

Table-driven rules first, then a state machine over spaces whose spec changes, whose
members copy rows between databases, publish and purge, checking that no sequence
gives a user rows of a product at a level they are not entitled to.
"""

from datetime import datetime

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from jupyterhub_spaces.policy import (
    AssetRef,
    Level,
    Mode,
    Role,
    SpaceSpec,
    Subscription,
    Target,
    decide,
    lineage_sources,
    requirements,
)

NOW = datetime(2026, 6, 1, 12, 0)
A = Target("product", 1, "retail")
B = Target("product", 2, "weather")
B_ASSET = AssetRef(20, "daily", product_id=2, product_name="weather")
B_ASSET_T = Target("asset", 20, "daily")
D = AssetRef(300, "forecast", upstream_products=(B,))


def sub(user, target, level="full"):
    return Subscription(user, target, Level(level))


def space(products=(A,), assets=(), taint_products=(), taint_assets=()):
    return SpaceSpec(
        id=5, owner="alice", products=products, assets=assets,
        collaborators=(("bob", Role.editor),),
        taint_products=taint_products, taint_assets=taint_assets,
    )


@pytest.mark.parametrize(
    "spec, subs, mode, missing, sandboxed",
    [
        # B was removed from the spec but is in the taint: still needed
        (space(taint_products=(B,)), [sub("bob", A)], Mode.locked, [("product", 2, True)], []),
        (space(taint_products=(B,)), [sub("bob", A), sub("bob", B, "spaces")], Mode.sandbox, [],
         [("product", 2)]),
        (space(taint_products=(B,)), [sub("bob", A), sub("bob", B)], Mode.workbench, [], []),
        # observation 3: A removed, A in the taint, bob's A is spaces-level: still sandbox
        (space(products=(), taint_products=(A,)), [sub("bob", A, "spaces")], Mode.sandbox, [],
         [("product", 1)]),
        (space(products=(), taint_products=(A,)), [], Mode.locked, [("product", 1, True)], []),
        # the taint repeating the spec changes nothing, and the spec's reason wins
        (space(taint_products=(A,)), [sub("bob", A, "spaces")], Mode.sandbox, [], [("product", 1)]),
        (space(taint_products=(A,)), [], Mode.locked, [("product", 1, False)], []),
        # a removed asset is covered by its product, as in the spec
        (space(taint_assets=(B_ASSET,)), [sub("bob", A), sub("bob", B)], Mode.workbench, [], []),
        (space(taint_assets=(B_ASSET,)), [sub("bob", A), sub("bob", B_ASSET_T, "spaces")],
         Mode.sandbox, [], [("asset", 20)]),
        (space(taint_assets=(B_ASSET,)), [sub("bob", A)], Mode.locked, [("asset", 20, True)], []),
        # a removed derived asset still needs its lineage
        (space(taint_assets=(D,)), [sub("bob", A)], Mode.locked, [("product", 2, True)], []),
        (space(taint_assets=(D,)), [sub("bob", A), sub("bob", B)], Mode.workbench, [], []),
    ],
)
def test_taint_counts_like_the_spec(spec, subs, mode, missing, sandboxed):
    decision = decide("bob", spec, subs, NOW)
    assert decision.mode == mode
    assert [(m.target.kind, m.target.id, m.remains) for m in decision.missing] == missing
    assert [(t.kind, t.id) for t in decision.sandboxed_by] == sandboxed


@pytest.mark.parametrize(
    "spec, subs, words",
    [
        (space(taint_products=(B,)), [sub("bob", A)],
         ["no subscription to product 'weather'",
          "data from product 'weather' remains in this space's databases", "purge"]),
        (space(products=(), taint_products=(A,)), [sub("bob", A, "spaces")],
         ["sandbox", "product 'retail' (data from product 'retail' remains in this space's databases)"]),
        (space(taint_assets=(D,)), [sub("bob", A)],
         ["a source of derived asset 'forecast'",
          "data from asset 'forecast' remains in this space's databases"]),
    ],
)
def test_reasons_name_what_remains(spec, subs, words):
    reason = decide("bob", spec, subs, NOW).reason
    for w in words:
        assert w in reason


def test_spec_requirements_come_first_and_are_not_marked():
    spec = space(products=(A,), taint_products=(A, B))
    assert [(r.target.id, r.remains) for r in requirements(spec)] == [(1, False), (2, True)]


@pytest.mark.parametrize(
    "spec, products, assets",
    [
        (space(), [1], []),
        # a product removed from the spec is still a source
        (space(taint_products=(A, B)), [1, 2], []),
        (space(products=(), assets=(B_ASSET,), taint_assets=(B_ASSET, D)), [], [20, 300]),
    ],
)
def test_lineage_sources_are_spec_and_taint(spec, products, assets):
    got_products, got_assets = lineage_sources(spec)
    assert [t.id for t in got_products] == products
    assert [t.id for t in got_assets] == assets


# --- the state machine ---------------------------------------------------------------

#: the catalog: product id -> its primary assets (id -> name)
CATALOG = {1: {11: "a11", 12: "a12"}, 2: {21: "a21"}}
PRODUCT_OF = {a: p for p, assets in CATALOG.items() for a in assets}
USERS = ("u1", "u2", "u3")
SPACES = (1, 2)
RANK = {None: 0, Level.spaces: 1, Level.full: 2}


class TaintedSpaces(RuleBasedStateMachine):
    """Two spaces over one catalog. The model keeps, apart from anything the policy
    says, the *origin* of the rows each space's Collaborative/Publish data holds (the
    primary assets they were copied from) and of each derived asset's snapshot."""

    def __init__(self):
        super().__init__()
        self.products = {s: set() for s in SPACES}
        self.assets = {s: set() for s in SPACES}  # primary or derived asset ids
        # the taint, kept as the store keeps it: grows with the spec, reset by a purge
        self.taint_products = {s: set() for s in SPACES}
        self.taint_assets = {s: set() for s in SPACES}
        self.rows = {s: set() for s in SPACES}  # primary asset ids whose rows are in its data
        self.derived = {}  # id -> (origins, lineage products, lineage assets)
        self.subs = {}  # (user, target key) -> level

    @initialize(levels=st.lists(st.sampled_from([None, Level.spaces, Level.full]),
                                min_size=len(USERS) * (len(CATALOG) + len(PRODUCT_OF)),
                                max_size=len(USERS) * (len(CATALOG) + len(PRODUCT_OF))))
    def subscriptions(self, levels):
        keys = [("product", p) for p in CATALOG] + [("asset", a) for a in PRODUCT_OF]
        it = iter(levels)
        self.subs = {(u, k): next(it) for u in USERS for k in keys}

    # -- the world ---------------------------------------------------------------
    def _taint(self, s):
        self.taint_products[s] |= self.products[s]
        self.taint_assets[s] |= self.assets[s]

    @rule(s=st.sampled_from(SPACES), p=st.sampled_from(sorted(CATALOG)))
    def add_product(self, s, p):
        self.products[s].add(p)
        self._taint(s)

    @rule(s=st.sampled_from(SPACES), p=st.sampled_from(sorted(CATALOG)))
    def remove_product(self, s, p):
        self.products[s].discard(p)

    @rule(s=st.sampled_from(SPACES), data=st.data())
    def add_asset(self, s, data):
        self.assets[s].add(data.draw(st.sampled_from(sorted(PRODUCT_OF) + sorted(self.derived))))
        self._taint(s)

    @rule(s=st.sampled_from(SPACES), data=st.data())
    def remove_asset(self, s, data):
        if self.assets[s]:
            self.assets[s].discard(data.draw(st.sampled_from(sorted(self.assets[s]))))

    def origins(self, s) -> set[int]:
        """Primary assets whose rows a session of ``s`` can see right now."""
        found = {a for p in self.products[s] for a in CATALOG[p]}
        for a in self.assets[s]:
            found |= self.derived[a][0] if a in self.derived else {a}
        return found

    @rule(s=st.sampled_from(SPACES))
    def copy_rows_into_collaborative_or_publish(self, s):
        # everything a session of the space sees, into tables that outlive the spec
        self.rows[s] |= self.origins(s)

    @rule(s=st.sampled_from(SPACES))
    def publish(self, s):
        products, assets = lineage_sources(self.spec(s))
        self.derived[1000 + len(self.derived)] = (
            set(self.rows[s]), {t.id for t in products}, {t.id for t in assets}
        )

    @rule(s=st.sampled_from(SPACES))
    def purge(self, s):
        self.rows[s] = set()
        self.taint_products[s] = set(self.products[s])
        self.taint_assets[s] = set(self.assets[s])

    @rule(u=st.sampled_from(USERS), p=st.sampled_from(sorted(CATALOG)),
          level=st.sampled_from([None, Level.spaces, Level.full]))
    def subscribe_to_product(self, u, p, level):
        self.subs[(u, ("product", p))] = level

    @rule(u=st.sampled_from(USERS), a=st.sampled_from(sorted(PRODUCT_OF)),
          level=st.sampled_from([None, Level.spaces, Level.full]))
    def subscribe_to_asset(self, u, a, level):
        self.subs[(u, ("asset", a))] = level

    # -- what the policy is given ------------------------------------------------
    def ref(self, a, seen=()) -> AssetRef:
        if a not in self.derived:
            p = PRODUCT_OF[a]
            return AssetRef(a, CATALOG[p][a], product_id=p, product_name=f"p{p}")
        # flattened as the store's lineage walk does
        _, products, assets = self.derived[a]
        ups_p, ups_a = set(products), set()
        for src in assets:
            if src in self.derived and src not in seen:
                inner = self.ref(src, (*seen, a))
                ups_p |= {t.id for t in inner.upstream_products}
                ups_a |= {r.id for r in inner.upstream_assets}
            elif src not in self.derived:
                ups_a.add(src)
        ref = AssetRef(
            a, f"d{a}",
            upstream_products=tuple(Target("product", p, f"p{p}") for p in sorted(ups_p)),
            upstream_assets=tuple(self.ref(x) for x in sorted(ups_a)),
        )
        return ref if ref.derived else AssetRef(a, f"d{a}")

    def spec(self, s) -> SpaceSpec:
        return SpaceSpec(
            id=s, owner="u1",
            products=tuple(Target("product", p, f"p{p}") for p in sorted(self.products[s])),
            assets=tuple(self.ref(a) for a in sorted(self.assets[s])),
            collaborators=tuple((u, Role.editor) for u in USERS[1:]),
            taint_products=tuple(Target("product", p, f"p{p}") for p in sorted(self.taint_products[s])),
            taint_assets=tuple(self.ref(a) for a in sorted(self.taint_assets[s])),
        )

    def entitled(self, user, asset) -> Level | None:
        levels = [self.subs.get((user, ("asset", asset))),
                  self.subs.get((user, ("product", PRODUCT_OF[asset])))]
        return max(levels, key=RANK.get)

    @invariant()
    def nobody_gets_rows_beyond_their_subscriptions(self):
        subs = [Subscription(u, Target(k, i), level) for (u, (k, i)), level in self.subs.items() if level]
        cases = [(self.spec(s), self.rows[s] | self.origins(s)) for s in SPACES]
        # and each derived asset alone in a new space, as anyone may create one
        cases += [
            (SpaceSpec(id=99, owner="u1", assets=(self.ref(d),),
                       collaborators=tuple((u, Role.editor) for u in USERS[1:])), origins)
            for d, (origins, _, _) in self.derived.items()
        ]
        for spec, reachable in cases:
            s = spec.id
            for user in USERS:
                mode = decide(user, spec, subs, NOW, lineage_enforced=True).mode
                if mode == Mode.locked:
                    continue
                need = Level.full if mode == Mode.workbench else Level.spaces
                short = {a for a in reachable if RANK[self.entitled(user, a)] < RANK[need]}
                assert not short, (
                    f"{user} gets a {mode.value} in space {s} with rows of {sorted(short)}"
                )


TaintedSpaces.TestCase.settings = settings(max_examples=1200, stateful_step_count=25, deadline=None)
test_no_sequence_gives_rows_beyond_subscriptions = TaintedSpaces.TestCase
