"""The lineage graph of an asset, upstream and downstream, computed in the database.

Both directions are one recursive query each over ``lineage_edges``:

* **upstream** of an asset: the edges leaving it towards what it was made from, then
  the edges of those sources, and so on;
* **downstream**: the edges pointing at it (or at its product, for a primary asset:
  something made from the whole product was made from it too), then the edges
  pointing at those derived assets, and so on.

The result is plain JSON: nodes (``asset:<id>`` / ``product:<id>``) and edges from
source to derived. :mod:`.lineage_svg` draws it.
"""

from __future__ import annotations

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from .. import orm


def _upstream_statement():
    edges = orm.LineageEdge.__table__
    walk = (
        select(edges.c.asset_id, edges.c.source_asset_id, edges.c.source_product_id)
        .where(edges.c.asset_id == bindparam("asset_id"))
        .cte("upstream", recursive=True)
    )
    deeper = edges.alias("deeper")
    # UNION (not UNION ALL) stops on a cycle: a row already found is not walked again
    walk = walk.union(
        select(deeper.c.asset_id, deeper.c.source_asset_id, deeper.c.source_product_id).where(
            deeper.c.asset_id == walk.c.source_asset_id
        )
    )
    return select(walk.c.asset_id, walk.c.source_asset_id, walk.c.source_product_id)


def _downstream_statement():
    edges = orm.LineageEdge.__table__
    walk = (
        select(edges.c.asset_id, edges.c.source_asset_id, edges.c.source_product_id)
        .where(
            or_(
                edges.c.source_asset_id == bindparam("asset_id"),
                # a null product matches nothing: primary assets only
                edges.c.source_product_id == bindparam("product_id"),
            )
        )
        .cte("downstream", recursive=True)
    )
    further = edges.alias("further")
    walk = walk.union(
        select(further.c.asset_id, further.c.source_asset_id, further.c.source_product_id).where(
            further.c.source_asset_id == walk.c.asset_id
        )
    )
    return select(walk.c.asset_id, walk.c.source_asset_id, walk.c.source_product_id)


# built once: building and keying statements this size costs more than running them
_UPSTREAM = _upstream_statement()
_DOWNSTREAM = _downstream_statement()


def _upstream_edges(db: Session, asset_id: int) -> list[tuple[int, int | None, int | None]]:
    return list(db.execute(_UPSTREAM, {"asset_id": asset_id}))


def _downstream_edges(
    db: Session, asset_id: int, product_id: int | None
) -> list[tuple[int, int | None, int | None]]:
    return list(db.execute(_DOWNSTREAM, {"asset_id": asset_id, "product_id": product_id}))


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
    up = _upstream_edges(db, asset_id)
    down = _downstream_edges(db, asset_id, root_product)

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
    products = dict(
        db.execute(
            select(orm.Product.id, orm.Product.name).where(
                orm.Product.id.in_(bindparam("ids", expanding=True))
            ),
            {"ids": list(product_ids)},
        ).all()
    ) if product_ids else {}
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
