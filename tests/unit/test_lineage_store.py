"""Lineage in the store: the recursive upstream walk the access rule uses, the
lineage graph the API returns, and its SVG drawing (SQLite catalog)."""

from __future__ import annotations

from datetime import timedelta
from xml.etree import ElementTree

import pytest
from sqlalchemy import update

from jupyterhub_spaces import orm
from jupyterhub_spaces.databases.lineage import lineage
from jupyterhub_spaces.databases.lineage_svg import layers, render
from jupyterhub_spaces.policy import Mode
from jupyterhub_spaces.store import Store, decide, record_lineage, space_query, upstream_of
from jupyterhub_spaces.utils import utcnow


@pytest.fixture
def cat(tmp_path):
    """Products P (assets p1, p2) and Q (asset q1); derived assets:
    d1 <- p1 (asset only), d2 <- product Q, d3 <- d1 + d2, d4 <- d3, orphan (no edges),
    d5 <- orphan. Space 'uses' (owner ann) holds one derived asset, set per test."""
    store = Store(f"sqlite:///{tmp_path}/cat.sqlite")
    ids = {}
    with store.transaction() as db:
        org = orm.Organization(name="o")
        db.add(org)
        db.flush()
        ann = orm.User(name="ann", org_id=org.id)
        db.add(ann)
        P = orm.Product(name="P", owner_org_id=org.id)
        Q = orm.Product(name="Q", owner_org_id=org.id)
        db.add_all([P, Q])
        db.flush()

        def asset(name, product=None, derived=False):
            a = orm.Asset(name=name, kind="table", location=name, owner_org_id=org.id,
                          product_id=product.id if product else None, derived=derived)
            db.add(a)
            db.flush()
            ids[name] = a.id
            return a

        p1, p2, q1 = asset("p1", P), asset("p2", P), asset("q1", Q)
        d1, d2, d3, d4 = (asset(n, derived=True) for n in ("d1", "d2", "d3", "d4"))
        orphan, d5 = asset("orphan", derived=True), asset("d5", derived=True)
        # in the order a publish would write them: sources first
        record_lineage(db, d1.id, [], [p1.id])
        record_lineage(db, d2.id, [Q.id], [])
        record_lineage(db, d3.id, [], [d1.id, d2.id])
        record_lineage(db, d4.id, [], [d3.id])
        record_lineage(db, d5.id, [], [orphan.id])
        space = orm.Space(slug="uses", display_name="Uses", owner_id=ann.id, tools=["jupyterlab"], profile="small")
        space.collaborators = [orm.Collaborator(user_id=ann.id, role="owner")]
        db.add(space)
        db.flush()
        ids.update(P=P.id, Q=Q.id, ann=ann.id, space=space.id, p2=p2.id, q1=q1.id)
    yield store, ids
    store.dispose()


def use(store, ids, asset_name):
    with store.transaction() as db:
        db.add(orm.SpaceAsset(space_id=ids["space"], asset_id=ids[asset_name]))


def subscribe(store, ids, **targets):
    with store.transaction() as db:
        for kind, name in targets.items():
            key = "product_id" if kind.startswith("product") else "asset_id"
            db.add(orm.Subscription(user_id=ids["ann"], level="full", status="active",
                                    **{key: ids[name]}))


def mode(store, ids, enforced):
    with store.transaction() as db:
        space = db.scalar(space_query().where(orm.Space.id == ids["space"]))
        d = decide(db, ["ann"], space, lineage_enforced=enforced)["ann"]
        return d.mode, sorted((m.target.kind, m.target.name) for m in d.missing)


def test_upstream_walks_every_level(cat):
    store, ids = cat
    with store.transaction() as db:
        found = upstream_of(db, [ids["d4"], ids["d1"]])
    products, assets = found[ids["d4"]]
    assert {p.name for p in products} == {"Q"}
    assert {a.name for a in assets} == {"p1"}  # derived d1, d2, d3 inherit, not required
    assert {a.name for a in found[ids["d1"]][1]} == {"p1"}


def test_deep_derived_asset_needs_every_contributing_source_when_enforced(cat):
    store, ids = cat
    use(store, ids, "d4")
    assert mode(store, ids, True) == (Mode.locked, [("asset", "p1"), ("product", "Q")])
    subscribe(store, ids, product="Q")
    assert mode(store, ids, True) == (Mode.locked, [("asset", "p1")])
    subscribe(store, ids, product2="P")  # the product covers its asset p1
    assert mode(store, ids, True) == (Mode.workbench, [])


def test_not_enforced_a_product_that_went_in_whole_still_counts(cat):
    store, ids = cat
    use(store, ids, "d4")
    assert mode(store, ids, False) == (Mode.locked, [("product", "Q")])
    subscribe(store, ids, product="Q")
    assert mode(store, ids, False) == (Mode.workbench, [])


def test_seed_rule_derived_from_assets_only_needs_nothing_when_not_enforced(cat):
    store, ids = cat
    use(store, ids, "d1")
    assert mode(store, ids, False) == (Mode.workbench, [])
    assert mode(store, ids, True) == (Mode.locked, [("asset", "p1")])


def test_a_lapsed_source_subscription_locks_the_derived_asset(cat):
    store, ids = cat
    use(store, ids, "d1")
    subscribe(store, ids, asset="p1")
    assert mode(store, ids, True) == (Mode.workbench, [])
    with store.transaction() as db:
        db.execute(update(orm.Subscription).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert mode(store, ids, True)[0] == Mode.locked


def test_derived_source_without_lineage_fails_closed(cat):
    store, ids = cat
    use(store, ids, "d5")
    assert mode(store, ids, True) == (Mode.locked, [("asset", "orphan")])
    subscribe(store, ids, asset="orphan")
    assert mode(store, ids, True) == (Mode.workbench, [])


def test_lineage_graph_up_and_down(cat):
    store, ids = cat
    with store.transaction() as db:
        g = lineage(db, ids["d3"])
    rel = {n["name"]: n["relation"] for n in g["nodes"]}
    assert rel == {"d3": "self", "d1": "upstream", "d2": "upstream", "p1": "upstream",
                   "Q": "upstream", "d4": "downstream"}
    edges = {(e["source"], e["target"]) for e in g["edges"]}
    assert (f"product:{ids['Q']}", f"asset:{ids['d2']}") in edges
    assert (f"asset:{ids['d3']}", f"asset:{ids['d4']}") in edges
    assert (g["upstream"], g["downstream"]) == (4, 1)


def test_primary_asset_downstream_includes_what_its_product_fed(cat):
    store, ids = cat
    with store.transaction() as db:
        g = lineage(db, ids["q1"])
        assert lineage(db, 10**6) is None
    rel = {n["name"]: n["relation"] for n in g["nodes"]}
    # d2 was made from the whole product Q, so from q1 too; then d3 and d4
    assert rel == {"q1": "self", "Q": "downstream", "d2": "downstream", "d3": "downstream",
                   "d4": "downstream"}
    assert {"source": f"asset:{ids['q1']}", "target": f"product:{ids['Q']}", "kind": "part_of"} in g["edges"]


def test_svg_is_well_formed_and_layered(cat):
    store, ids = cat
    with store.transaction() as db:
        g = lineage(db, ids["d3"])
    svg = render(g)
    root = ElementTree.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    nodes = root.findall(f"{ns}g")
    assert len(nodes) == len(g["nodes"])
    assert len(root.findall(f"{ns}path")) == len(g["edges"])
    x = {n.get("data-id"): float(n.find(f"{ns}rect").get("x")) for n in nodes}
    # every edge points right: sources are drawn left of what was made from them
    for e in g["edges"]:
        assert x[e["source"]] < x[e["target"]]
    assert "<script" not in svg


def test_svg_escapes_names_and_trims_big_graphs():
    nodes = [{"id": f"asset:{i}", "type": "asset", "name": f"<a{i}>&", "derived": True,
              "relation": "upstream", "product": None} for i in range(400)]
    nodes[0]["relation"] = "self"
    edges = [{"source": f"asset:{i + 1}", "target": f"asset:{i}", "kind": "derived_from"} for i in range(399)]
    svg = render({"asset": nodes[0], "nodes": nodes, "edges": edges}, max_nodes=50)
    root = ElementTree.fromstring(svg)  # would raise on an unescaped name
    assert len(root.findall("{http://www.w3.org/2000/svg}g")) == 50
    assert "350 more node(s) not drawn" in svg


def test_layers_are_longest_paths():
    assert layers(["a", "b", "c"], [("a", "b"), ("b", "c"), ("a", "c")]) == {"a": 0, "b": 1, "c": 2}
