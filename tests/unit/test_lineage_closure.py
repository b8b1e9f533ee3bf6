"""The lineage closure written at publish is exactly what walking the lineage edges
finds, on random lineage graphs (a real SQLite catalog), and the lineage graph read
from it is the one the edges draw."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from jupyterhub_spaces import orm
from jupyterhub_spaces.databases.lineage import lineage
from jupyterhub_spaces.store import LineageRecorded, Store, record_lineage, upstream_of

PRODUCTS = 3


@st.composite
def catalogs(draw):
    """Primary assets (each in one of the products), then derived assets in publish
    order, each made from products, primary assets and earlier derived assets (or
    from nothing: published from an empty space)."""
    primary = draw(st.lists(st.integers(0, PRODUCTS - 1), min_size=1, max_size=5))
    derived = []
    for i in range(draw(st.integers(1, 9))):
        derived.append((
            draw(st.sets(st.integers(0, PRODUCTS - 1), max_size=2)),
            draw(st.sets(st.integers(0, len(primary) - 1), max_size=3)),
            draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set(),
        ))
    return primary, derived


def walk(db: Session, asset_ids: list[int]) -> dict[int, tuple[set, set, set]]:
    """The reference: one recursive query over the edges, as access decisions ran it
    before the closure. Per asset: (products, leaf assets, every asset reached)."""
    edges = orm.LineageEdge.__table__
    cte = (
        select(edges.c.asset_id.label("root"), edges.c.asset_id, edges.c.source_asset_id,
               edges.c.source_product_id)
        .where(edges.c.asset_id.in_(bindparam("ids", expanding=True)))
        .cte("walk", recursive=True)
    )
    deeper = edges.alias("deeper")
    cte = cte.union(
        select(cte.c.root, deeper.c.asset_id, deeper.c.source_asset_id, deeper.c.source_product_id)
        .where(deeper.c.asset_id == cte.c.source_asset_id)
    )
    source = orm.Asset.__table__.alias("source")
    rows = db.execute(
        select(cte.c.root, cte.c.asset_id, cte.c.source_product_id, source.c.id, source.c.derived)
        .select_from(cte.outerjoin(source, source.c.id == cte.c.source_asset_id)),
        {"ids": asset_ids},
    ).all()
    walked: dict[int, set] = {}
    for root, owner, *_ in rows:
        walked.setdefault(root, set()).add(owner)
    found = {i: (set(), set(), set()) for i in asset_ids}
    for root, _owner, product, asset, derived in rows:
        if product is not None:
            found[root][0].add(product)
            continue
        found[root][2].add(asset)
        if not derived or asset not in walked[root]:
            found[root][1].add(asset)
    return found


def graph_from_edges(db: Session, asset_id: int) -> tuple[dict, set]:
    """The reference graph: relations and edges found by following the edges."""
    edges = db.execute(select(orm.LineageEdge.asset_id, orm.LineageEdge.source_asset_id,
                              orm.LineageEdge.source_product_id)).all()
    product = db.get(orm.Asset, asset_id).product_id
    key = lambda a, p: f"asset:{a}" if a is not None else f"product:{p}"  # noqa: E731
    relation, drawn = {}, set()
    up, frontier = set(), {asset_id}
    while frontier:
        found = [e for e in edges if e[0] in frontier and (e[0], e[1], e[2]) not in up]
        up.update(found)
        frontier = {e[1] for e in found if e[1] is not None}
    for derived, a, p in up:
        relation.setdefault(key(a, p), "upstream")
        drawn.add((key(a, p), f"asset:{derived}"))
    down, frontier = set(), {("asset", asset_id)} | ({("product", product)} if product else set())
    while frontier:
        found = [e for e in edges if (("asset", e[1]) in frontier or ("product", e[2]) in frontier)
                 and e not in down]
        down.update(found)
        frontier = {("asset", e[0]) for e in found}
    for derived, a, p in down:
        relation.setdefault(f"asset:{derived}", "downstream")
        drawn.add((key(a, p), f"asset:{derived}"))
    if down and product is not None and any(e[2] == product for e in down):
        relation.setdefault(f"product:{product}", "downstream")
        drawn.add((f"asset:{asset_id}", f"product:{product}"))
    relation[f"asset:{asset_id}"] = "self"
    return relation, drawn


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(f"sqlite:///{tmp_path_factory.mktemp('closure')}/cat.sqlite")
    yield s
    s.dispose()


def build(db: Session, primary: list[int], derived: list[tuple]) -> tuple[list[int], list[int]]:
    org = orm.Organization(name="o")
    db.add(org)
    db.flush()
    products = []
    for i in range(PRODUCTS):
        p = orm.Product(name=f"P{i}", owner_org_id=org.id)
        db.add(p)
        db.flush()
        products.append(p.id)
    assets = []
    for i, product in enumerate(primary):
        a = orm.Asset(name=f"a{i}", kind="table", product_id=products[product], owner_org_id=org.id)
        db.add(a)
        db.flush()
        assets.append(a.id)
    made = []
    for i, (from_products, from_assets, from_derived) in enumerate(derived):
        d = orm.Asset(name=f"d{i}", kind="table", derived=True, owner_org_id=org.id)
        db.add(d)
        db.flush()
        record_lineage(db, d.id, [products[p] for p in from_products],
                       [assets[a] for a in from_assets] + [made[j] for j in from_derived])
        made.append(d.id)
    return assets, made


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(catalogs())
def test_the_closure_is_the_walk(store, catalog):
    with Session(store.engine) as db, db.begin():
        assets, made = build(db, *catalog)
        everything = assets + made
        expected = walk(db, everything)
        leaves = upstream_of(db, everything)
        reached = upstream_of(db, everything, leaves_only=False)
        for i in everything:
            products, leaf_assets, all_assets = expected[i]
            assert {t.id for t in leaves[i][0]} == products
            assert {a.id for a in leaves[i][1]} == leaf_assets
            assert {t.id for t in reached[i][0]} == products
            assert {a.id for a in reached[i][1]} == all_assets
        for i in everything:
            graph = lineage(db, i)
            relation, drawn = graph_from_edges(db, i)
            assert {n["id"]: n["relation"] for n in graph["nodes"]} == relation
            assert {(e["source"], e["target"]) for e in graph["edges"]} == drawn
        db.rollback()


def test_lineage_is_written_once(store):
    with Session(store.engine) as db, db.begin():
        assets, made = build(db, [0], [({0}, set(), set())])
        with pytest.raises(LineageRecorded, match="never changes"):
            record_lineage(db, made[0], [], assets)
        db.rollback()


def test_a_derived_source_without_lineage_is_a_leaf_and_one_with_lineage_is_not(store):
    # d0 from nothing; d1 from a0; d2 from d0 and d1
    with Session(store.engine) as db, db.begin():
        assets, made = build(db, [0], [(set(), set(), set()), (set(), {0}, set()), (set(), set(), {0, 1})])
        rows = db.execute(
            select(orm.LineageClosure.source_asset_id, orm.LineageClosure.leaf)
            .where(orm.LineageClosure.asset_id == made[2])
        ).all()
        assert dict(rows) == {made[0]: True, made[1]: False, assets[0]: True}
        db.rollback()


def test_only_record_lineage_writes_lineage():
    """Edges written without their closure would let the access rule see a derived
    asset made from nothing: nothing in the package writes either table but
    ``store.record_lineage`` (and the migration that fills the closure once)."""
    import re
    from pathlib import Path

    import jupyterhub_spaces

    root = Path(jupyterhub_spaces.__file__).parent
    writes = re.compile(
        r"(?<!class )Lineage(Edge|Closure)\(|insert\((orm\.)?Lineage"
        r"|INSERT INTO (lineage_edges|asset_lineage_closure)",
        re.IGNORECASE,
    )
    found = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "alembic" not in path.parts and path.name != "store.py" and writes.search(path.read_text())
    ]
    assert found == []
    assert writes.search((root / "store.py").read_text())  # the pattern does see a write
