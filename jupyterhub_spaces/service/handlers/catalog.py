"""The catalog: products with their assets, each with the caller's subscription state.

Any user may browse the whole catalog (what exists is not secret; using it needs a
subscription). Each product and asset carries ``subscription``: the caller's own
subscription to it (``level``, ``status``, ``expires_at``, ``active``) or null.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from ... import orm
from ..base import APIError, APIHandler
from ..models import asset_model, product_model


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class CatalogHandler(APIHandler):
    def my_subscriptions(self, product_ids, asset_ids) -> dict[tuple[str, int], orm.Subscription]:
        """The caller's subscription rows to these products and assets, by target key."""
        user = self.current_db_user()
        if not product_ids and not asset_ids:
            return {}
        rows = self.db.scalars(
            select(orm.Subscription).where(
                orm.Subscription.user_id == user.id,
                or_(
                    orm.Subscription.product_id.in_(product_ids or [-1]),
                    orm.Subscription.asset_id.in_(asset_ids or [-1]),
                ),
            )
        )
        out = {}
        for sub in rows:
            key = ("product", sub.product_id) if sub.product_id is not None else ("asset", sub.asset_id)
            out[key] = sub
        return out


class ProductsHandler(CatalogHandler):
    """``GET /api/v1/catalog/products?q=``"""

    async def get(self):
        # any user
        query = (
            select(orm.Product)
            .options(
                selectinload(orm.Product.assets).selectinload(orm.Asset.product),
                selectinload(orm.Product.owner_org),
            )
            .order_by(orm.Product.name)
        )
        q = self.text_argument("q") or ""
        if q:
            query = query.where(
                or_(orm.Product.name.ilike(_like(q), escape="\\"),
                    orm.Product.description.ilike(_like(q), escape="\\"))
            )
        page = self.page_of(query)
        rows = page.pop("rows")
        subs = self.my_subscriptions(
            [p.id for p in rows], [a.id for p in rows for a in p.assets]
        )
        self.write_json({"items": [product_model(p, subs) for p in rows], **page})


class ProductHandler(CatalogHandler):
    """``GET /api/v1/catalog/products/{id}``"""

    async def get(self, product_id):
        # any user
        pid = self.id_argument(product_id, "product")
        product = self.db.scalar(
            select(orm.Product)
            .where(orm.Product.id == pid)
            .options(selectinload(orm.Product.assets).selectinload(orm.Asset.product),
                     selectinload(orm.Product.owner_org))
        )
        if product is None:
            raise APIError(404, f"no product with id {pid}: see GET catalog/products")
        subs = self.my_subscriptions([product.id], [a.id for a in product.assets])
        self.write_json(product_model(product, subs))


class AssetHandler(CatalogHandler):
    """``GET /api/v1/catalog/assets/{id}`` (also derived assets, which have no product)"""

    async def get(self, asset_id):
        # any user
        aid = self.id_argument(asset_id, "asset")
        asset = self.db.scalar(
            select(orm.Asset).where(orm.Asset.id == aid).options(selectinload(orm.Asset.product))
        )
        if asset is None:
            raise APIError(404, f"no asset with id {aid}: see GET catalog/products")
        subs = self.my_subscriptions([], [asset.id])
        self.write_json(asset_model(asset, subs.get(("asset", asset.id)), with_sub=True))


default_handlers = [
    (r"api/v1/catalog/products", ProductsHandler),
    (r"api/v1/catalog/products/([^/]+)", ProductHandler),
    (r"api/v1/catalog/assets/([^/]+)", AssetHandler),
]
