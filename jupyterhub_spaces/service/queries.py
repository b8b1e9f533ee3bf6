"""Read paths of the API that run on every page view: spaces loaded as plain rows.

Loading a page of spaces as ORM objects with every relationship costs a round trip
per relationship and an object per row; the list of my spaces and a space's access
decision run on every page view of the Spaces app, so they read the same data with a
fixed number of plain queries (spaces with owner and my role, their products, their
assets, their members) whatever the number of spaces, and build light views with the
attribute paths the ORM rows have. :func:`jupyterhub_spaces.store.space_spec` and the
JSON shapes in :mod:`.models` take either.
"""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import bindparam, func, literal, null, select, union_all
from sqlalchemy.orm import Session

from .. import orm


def _ns(**kw) -> SimpleNamespace:
    return SimpleNamespace(**kw)


def member_spaces_page(
    db: Session, user_id: int, offset: int, limit: int, role: str | None = None
) -> tuple[int, list[int], dict[int, str]]:
    """One page of the ids of the spaces ``user_id`` is a member of (by id), the
    total, and the user's role in each."""
    c = orm.Collaborator
    query = select(c.space_id, c.role, func.count().over()).where(c.user_id == user_id)
    if role:
        query = query.where(c.role == role)
    rows = db.execute(query.order_by(c.space_id).offset(offset).limit(limit)).all()
    if rows:
        total = rows[0][2]
    else:
        count = select(func.count()).select_from(c).where(c.user_id == user_id)
        if role:
            count = count.where(c.role == role)
        total = db.scalar(count)
    return total, [r[0] for r in rows], {r[0]: r[1] for r in rows}


def _space_data_statement():
    """Products, assets and taint of the spaces ``space_ids`` in one round trip, as rows
    of (space, which, position, id, name, kind, product id, derived, product name):
    ``which`` is 0 for a product, 1 for an asset, 2 for a product of the taint and 3
    for an asset of the taint (in the order of their taint rows)."""
    ids = bindparam("space_ids", expanding=True)
    sp, p = orm.SpaceProduct.__table__, orm.Product.__table__
    sa, a = orm.SpaceAsset.__table__, orm.Asset.__table__
    t = orm.SpaceTaint.__table__
    ap = p.alias("asset_product")
    products = select(
        sp.c.space_id, literal(0).label("which"), sp.c.position, p.c.id, p.c.name,
        null().label("kind"), null().label("product_id"), null().label("derived"), null().label("product_name"),
    ).join(p, p.c.id == sp.c.product_id).where(sp.c.space_id.in_(ids))
    assets = select(
        sa.c.space_id, literal(1), sa.c.position, a.c.id, a.c.name, a.c.kind, a.c.product_id, a.c.derived,
        ap.c.name,
    ).join(a, a.c.id == sa.c.asset_id).outerjoin(ap, ap.c.id == a.c.product_id).where(
        sa.c.space_id.in_(ids)
    )
    tp, ta, tap = p.alias("taint_product"), a.alias("taint_asset"), p.alias("taint_asset_product")
    taint_products = select(
        t.c.space_id, literal(2), t.c.id, tp.c.id, tp.c.name, null(), null(), null(), null(),
    ).join(tp, tp.c.id == t.c.product_id).where(t.c.space_id.in_(ids))
    taint_assets = select(
        t.c.space_id, literal(3), t.c.id, ta.c.id, ta.c.name, ta.c.kind, ta.c.product_id, ta.c.derived,
        tap.c.name,
    ).join(ta, ta.c.id == t.c.asset_id).outerjoin(tap, tap.c.id == ta.c.product_id).where(
        t.c.space_id.in_(ids)
    )
    data = union_all(products, assets, taint_products, taint_assets).subquery()
    return select(data).order_by(data.c.space_id, data.c.which, data.c.position)


def _spaces_statement():
    s, u = orm.Space.__table__, orm.User.__table__
    return (
        select(s, u.c.name.label("owner_name"), u.c.display_name.label("owner_display"))
        .join(u, u.c.id == s.c.owner_id)
        .where(s.c.id.in_(bindparam("space_ids", expanding=True)))
    )


def _members_statement():
    c, u = orm.Collaborator.__table__, orm.User.__table__
    return (
        select(c.c.space_id, c.c.user_id, c.c.role, c.c.added_at, u.c.name, u.c.display_name)
        .join(u, u.c.id == c.c.user_id)
        .where(c.c.space_id.in_(bindparam("space_ids", expanding=True)))
        .order_by(c.c.id)
    )


#: built once: building and keying these costs more than running them (every page view)
_SPACE_DATA = _space_data_statement()
_SPACES = _spaces_statement()
_MEMBERS = _members_statement()


def space_views(db: Session, space_ids: list[int]) -> dict[int, SimpleNamespace]:
    """The spaces with these ids as views (owner, products, assets with their
    product, taint, members with their user), by id, in three queries."""
    if not space_ids:
        return {}
    views: dict[int, SimpleNamespace] = {}
    ids = {"space_ids": list(space_ids)}
    for r in db.execute(_SPACES, ids).mappings():
        views[r["id"]] = _ns(
            id=r["id"], slug=r["slug"], display_name=r["display_name"], description=r["description"],
            owner_id=r["owner_id"], owner=_ns(id=r["owner_id"], name=r["owner_name"], display_name=r["owner_display"]),
            tools=r["tools"], profile=r["profile"], workers=r["workers"],
            created_at=r["created_at"], updated_at=r["updated_at"],
            products=[], assets=[], collaborators=[], taint=[],
        )

    for space_id, which, _pos, xid, name, kind, product_id, derived, product_name in db.execute(_SPACE_DATA, ids):
        if which in (0, 2):
            product = _ns(id=xid, name=name)
            if which == 0:
                views[space_id].products.append(_ns(product_id=xid, product=product))
            else:
                views[space_id].taint.append(_ns(product_id=xid, product=product, asset_id=None, asset=None))
            continue
        product = _ns(id=product_id, name=product_name) if product_id is not None else None
        asset = _ns(id=xid, name=name, kind=kind, product_id=product_id, product=product, derived=bool(derived))
        if which == 1:
            views[space_id].assets.append(_ns(asset_id=xid, asset=asset))
        else:
            views[space_id].taint.append(_ns(product_id=None, product=None, asset_id=xid, asset=asset))

    for space_id, user_id, role, added_at, name, display in db.execute(_MEMBERS, ids):
        views[space_id].collaborators.append(
            _ns(user_id=user_id, role=role, added_at=added_at, user=_ns(id=user_id, name=name, display_name=display))
        )
    return views
