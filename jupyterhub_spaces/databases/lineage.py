"""The lineage graph of an asset, upstream and downstream, read from the catalog.

What an asset was made from and what was made from it come from the lineage closure
written at publish (:func:`jupyterhub_spaces.store.upstream_of` and
:func:`~jupyterhub_spaces.store.derived_from`): no walk at read time. The graph's
edges are then one query over ``lineage_edges``:

* **upstream**: the edges of the asset and of every derived asset it was made from;
* **downstream**: the edges leaving the asset (or its product, for a primary asset:
  something made from the whole product was made from it too) and leaving every
  derived asset made from it.

The result is plain JSON: nodes (``asset:<id>`` / ``product:<id>``) and edges from
source to derived. :mod:`.lineage_svg` draws it.
"""

from __future__ import annotations

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from .. import orm
from ..store import derived_from, upstream_of


def _edges_statement():
    edges, closure = orm.LineageEdge.__table__, orm.LineageClosure.__table__
    asset_id, product_id = bindparam("asset_id"), bindparam("product_id")
    # the closure names the nodes on either side: no walk, and no id list to send
    made_from = select(closure.c.source_asset_id).where(closure.c.asset_id == asset_id)
    made_of_it = select(closure.c.asset_id).where(
        or_(closure.c.source_asset_id == asset_id, closure.c.source_product_id == product_id)
    )
    return select(edges.c.asset_id, edges.c.source_asset_id, edges.c.source_product_id).where(
        or_(
            edges.c.asset_id == asset_id,
            edges.c.asset_id.in_(made_from),
            edges.c.source_asset_id == asset_id,
            edges.c.source_asset_id.in_(made_of_it),
            # a null product matches nothing: primary assets only
            edges.c.source_product_id == product_id,
        )
    )


_EDGES = _edges_statement()


_ASSET_COLUMNS = (
    orm.Asset.id, orm.Asset.name, orm.Asset.kind, orm.Asset.derived,
    orm.Asset.source_space_id, orm.Asset.product_id, orm.Product.name,
)


def _asset_rows(db: Session, ids) -> dict[int, tuple]:
    rows = db.execute(
        select(*_ASSET_COLUMNS)
        .outerjoin(orm.Product, orm.Product.id == orm.Asset.product_id)
        .where(orm.Asset.id.in_(bindparam("ids", expanding=True))),
        {"ids": list(ids)},
    )
    return {row[0]: tuple(row) for row in rows}


def _asset_node(row: tuple, relation: str) -> dict:
    asset_id, name, kind, derived, source_space_id, _product_id, product = row
    return {
        "id": f"asset:{asset_id}",
        "type": "asset",
        "asset_id": asset_id,
        "name": name,
        "kind": kind,
        "derived": bool(derived),
        "product": product,
        "source_space_id": source_space_id,
        "relation": relation,
    }


def _product_node(product_id: int, name: str, relation: str) -> dict:
    return {
        "id": f"product:{product_id}",
        "type": "product",
        "product_id": product_id,
        "name": name,
        "relation": relation,
    }


def lineage(db: Session, asset_id: int) -> dict | None:
    """The lineage graph of asset ``asset_id`` (None when there is no such asset).

    ``{"asset": node, "nodes": [...], "edges": [{"source", "target", "kind"}],
    "upstream": n, "downstream": n}``: ``relation`` of each node is ``self``,
    ``upstream`` or ``downstream``; edge ``kind`` is ``derived_from`` (a lineage
    edge) or ``part_of`` (a primary asset inside the product a derived asset used).
    """
    root = _asset_rows(db, [asset_id]).get(asset_id)
    if root is None:
        return None
    root_product = root[5]
    up_products, up_assets = upstream_of(db, [asset_id], leaves_only=False)[asset_id]
    walked_up = {asset_id} | {a.id for a in up_assets}
    walked_down = {asset_id} | derived_from(db, asset_id, root_product)
    up, down = [], []
    for edge in db.execute(_EDGES, {"asset_id": asset_id, "product_id": root_product}):
        derived, source_asset, source_product = edge
        if derived in walked_up:
            up.append(edge)
        if source_asset in walked_down or (source_product is not None and source_product == root_product):
            down.append(edge)

    relation: dict[str, str] = {}
    asset_ids: set[int] = set()
    product_ids: set[int] = set()
    edges: dict[tuple[str, str], str] = {}

    def source_key(source_asset, source_product) -> str:
        if source_asset is not None:
            asset_ids.add(source_asset)
            return f"asset:{source_asset}"
        product_ids.add(source_product)
        return f"product:{source_product}"

    for derived, source_asset, source_product in up:
        key = source_key(source_asset, source_product)
        relation.setdefault(key, "upstream")
        asset_ids.add(derived)
        edges[(key, f"asset:{derived}")] = "derived_from"
    for derived, source_asset, source_product in down:
        key = source_key(source_asset, source_product)
        asset_ids.add(derived)
        relation.setdefault(f"asset:{derived}", "downstream")
        edges[(key, f"asset:{derived}")] = "derived_from"
    if down and root_product is not None and root_product in product_ids:
        # the root reached these through its product
        relation.setdefault(f"product:{root_product}", "downstream")
        edges[(f"asset:{asset_id}", f"product:{root_product}")] = "part_of"
    relation[f"asset:{asset_id}"] = "self"
    asset_ids.add(asset_id)

    assets = _asset_rows(db, asset_ids)
    # upstream edges leave what the closure holds; downstream ones the root's product
    names = {t.id: t.name for t in up_products}
    if root_product is not None:
        names[root_product] = root[6]
    unnamed = product_ids - names.keys()
    if unnamed:  # only if edges were written without their closure
        names.update(db.execute(
            select(orm.Product.id, orm.Product.name).where(orm.Product.id.in_(sorted(unnamed)))
        ).all())
    products = {i: names[i] for i in product_ids if i in names}
    nodes = [_asset_node(assets[i], relation.get(f"asset:{i}", "upstream")) for i in sorted(assets)]
    nodes += [
        _product_node(i, products[i], relation.get(f"product:{i}", "upstream")) for i in sorted(products)
    ]
    return {
        "asset": _asset_node(root, "self"),
        "nodes": nodes,
        "edges": [
            {"source": s, "target": t, "kind": kind} for (s, t), kind in sorted(edges.items())
        ],
        "upstream": sum(1 for n in nodes if n["relation"] == "upstream"),
        "downstream": sum(1 for n in nodes if n["relation"] == "downstream"),
    }
