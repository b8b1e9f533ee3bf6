"""The JSON shapes of the API: plain functions from catalog rows and policy values to
dicts, so every endpoint shows a thing the same way (and the OpenAPI document
describes one shape per thing)."""

from __future__ import annotations

from datetime import datetime

from .. import orm, policy
from ..utils import utcnow


def iso(value: datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with a Z, or None."""
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


def target_model(target: policy.Target) -> dict:
    return {"kind": target.kind, "id": target.id, "name": target.name}


def missing_model(m: policy.Missing) -> dict:
    return {
        **target_model(m.target),
        "reason": m.reason,
        "message": m.message,
        "via": target_model(m.via) if m.via else None,
    }


def decision_model(d: policy.Decision) -> dict:
    """An access decision with its reasons: what is missing and how to get it."""
    return {
        "user": d.user,
        "mode": d.mode.value,
        "role": d.role.value if d.role else None,
        "can_activate": d.can_activate,
        "reason": d.reason,
        "missing": [missing_model(m) for m in d.missing],
        "sandboxed_by": [target_model(t) for t in d.sandboxed_by],
    }


def user_model(user: orm.User) -> dict:
    return {
        "name": user.name,
        "display_name": user.display_name or user.name,
        "org": user.org.name if user.org else None,
    }


def collaborator_model(c: orm.Collaborator) -> dict:
    return {
        "user": c.user.name,
        "display_name": c.user.display_name or c.user.name,
        "role": c.role,
        "added_at": iso(c.added_at),
    }


def subscription_state(sub: orm.Subscription | None, now: datetime | None = None) -> dict | None:
    """The caller's subscription to one product or asset, as the catalog shows it."""
    if sub is None:
        return None
    now = now or utcnow()
    return {
        "id": sub.id,
        "level": sub.level,
        "status": sub.status,
        "expires_at": iso(sub.expires_at),
        "expired": policy.subscription_expired(sub.expires_at, now),
        "active": policy.subscription_active(sub.status, sub.expires_at, now),
    }


def asset_model(asset: orm.Asset, my_sub: orm.Subscription | None = None, with_sub: bool = False) -> dict:
    out = {
        "id": asset.id,
        "name": asset.name,
        "description": asset.description,
        "kind": asset.kind,
        "product_id": asset.product_id,
        "product": asset.product.name if asset.product else None,
        "derived": asset.derived,
    }
    if with_sub:
        out["subscription"] = subscription_state(my_sub)
    return out


def product_model(
    product: orm.Product, my_subs: dict[tuple[str, int], orm.Subscription] | None = None
) -> dict:
    """A product with its assets; with ``my_subs`` (target key -> the caller's row)
    each carries the caller's subscription state."""
    subs = my_subs if my_subs is not None else {}
    with_sub = my_subs is not None
    out = {
        "id": product.id,
        "name": product.name,
        "description": product.description,
        "owner_org": product.owner_org.name if product.owner_org else None,
        "assets": [asset_model(a, subs.get(("asset", a.id)), with_sub) for a in product.assets],
    }
    if with_sub:
        out["subscription"] = subscription_state(subs.get(("product", product.id)))
    return out


def subscription_model(sub: orm.Subscription) -> dict:
    target = (
        {"kind": "product", "id": sub.product_id, "name": sub.product.name}
        if sub.product_id is not None
        else {"kind": "asset", "id": sub.asset_id, "name": sub.asset.name}
    )
    state = subscription_state(sub)
    return {
        "id": sub.id,
        "user": sub.user.name,
        "target": target,
        "level": sub.level,
        "status": sub.status,
        "expires_at": state["expires_at"],
        "expired": state["expired"],
        "active": state["active"],
        "requested_at": iso(sub.requested_at),
        "updated_at": iso(sub.updated_at),
        "granted_by": sub.granted_by,
    }


def space_model(
    space: orm.Space, role: str | None = None, decision: policy.Decision | None = None
) -> dict:
    """A space spec; ``role`` and ``decision`` are the caller's."""
    out = {
        "id": space.id,
        "slug": space.slug,
        "server": policy.server_name(space.id),
        "display_name": space.display_name,
        "description": space.description,
        "owner": space.owner.name,
        "tools": list(space.tools or []),
        "profile": space.profile,
        "workers": space.workers,
        "products": [
            {"id": sp.product.id, "name": sp.product.name} for sp in space.products
        ],
        "assets": [
            {
                "id": sa.asset.id,
                "name": sa.asset.name,
                "kind": sa.asset.kind,
                "product_id": sa.asset.product_id,
                "product": sa.asset.product.name if sa.asset.product else None,
                "derived": sa.asset.derived,
            }
            for sa in space.assets
        ],
        "collaborators": [collaborator_model(c) for c in space.collaborators],
        "created_at": iso(space.created_at),
        "updated_at": iso(space.updated_at),
        "role": role,
    }
    if decision is not None:
        out["access"] = {
            "mode": decision.mode.value,
            "can_activate": decision.can_activate,
            "reason": decision.reason,
        }
    return out


def audit_model(e: orm.AuditEvent) -> dict:
    return {
        "id": e.id,
        "at": iso(e.at),
        "actor": e.actor,
        "action": e.action,
        "target_type": e.target_type,
        "target_id": e.target_id,
        "outcome": e.outcome,
        "detail": e.detail or {},
    }
