"""The access decision: what one user gets in one space, and why.

A member gets a *workbench* when every product and asset of the space is covered by
an active ``full`` subscription, a *sandbox* when all are covered but at least one
only at ``spaces`` level, and the space is *locked* for them when any is missing,
expired, revoked or still requested. Derived assets add the subscriptions their
lineage asks for (see :func:`requirements`).

Data carries its origin: what was ever part of a space (its *taint*, see
:class:`~.model.SpaceSpec`) counts as if it were still there, because its rows may
remain in the space's Collaborative and Publish databases. Removing a product from
a space therefore never loosens anyone's access, and a derived asset published from
the space names the whole taint as its lineage (:func:`lineage_sources`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .model import (
    AssetRef,
    Decision,
    Level,
    Missing,
    Mode,
    SpaceSpec,
    Subscription,
    SubscriptionStatus,
    Target,
)


@dataclass(frozen=True)
class Requirement:
    """One thing the user must be subscribed to: any target in ``any_of`` will do."""

    target: Target
    any_of: tuple[Target, ...]
    via: Target | None = None
    #: required by the space's taint only (no longer in its spec)
    remains: bool = False


def _asset_requirement(asset: AssetRef, via: Target | None = None, remains: bool = False) -> Requirement:
    target = Target("asset", asset.id, asset.name)
    covers = [target]
    if asset.product_id is not None:
        # a subscription to the whole product covers each of its assets
        covers.append(Target("product", asset.product_id, asset.product_name))
    return Requirement(target, tuple(covers), via, remains)


def requirements(space: SpaceSpec, lineage_enforced: bool = True) -> list[Requirement]:
    """Every subscription a member of ``space`` needs, without duplicates.

    A derived asset needs no subscription of its own; it inherits from its lineage.
    With lineage enforced it needs every contributing product and primary asset;
    without, only the products that went into it whole (assets derived from assets
    alone need nothing more).

    The space's taint counts like its spec: what is only in the taint comes after, with
    ``remains`` set, so a message can say its data remains in the space.
    """
    found: dict[tuple, Requirement] = {}

    def add(req: Requirement) -> None:
        found.setdefault(req.target.key, req)

    for products, assets, remains in (
        (space.products, space.assets, False),
        (space.taint_products, space.taint_assets, True),
    ):
        for product in products:
            add(Requirement(product, (product,), None, remains))
        for asset in assets:
            if not asset.derived:
                add(_asset_requirement(asset, None, remains))
                continue
            via = Target("asset", asset.id, asset.name)
            for product in asset.upstream_products:
                add(Requirement(product, (product,), via, remains))
            if lineage_enforced:
                for source in asset.upstream_assets:
                    add(_asset_requirement(source, via, remains))
    return list(found.values())


def lineage_sources(space: SpaceSpec) -> tuple[tuple[Target, ...], tuple[Target, ...]]:
    """The products and assets a table published from ``space`` was made from: its
    spec and its taint, each once (a derived asset by itself, not its own sources:
    the lineage walk follows it).
    """
    products = {t.key: t for t in (*space.products, *space.taint_products)}
    assets = {
        a.id: Target("asset", a.id, a.name) for a in (*space.assets, *space.taint_assets)
    }
    return tuple(products.values()), tuple(assets.values())


def _missing_reason(subs: list[Subscription], now: datetime) -> str:
    reasons = set()
    for sub in subs:
        if sub.status == SubscriptionStatus.active:
            reasons.add("expired")  # active but past its expiry
        else:
            reasons.add(sub.status.value)
    for reason in ("requested", "expired", "revoked"):
        if reason in reasons:
            return reason
    return "missing"


def decide(
    user: str,
    space: SpaceSpec,
    subscriptions: Iterable[Subscription],
    now: datetime,
    lineage_enforced: bool = True,
) -> Decision:
    """Decide what ``user`` gets in ``space`` given the user's ``subscriptions``."""
    role = space.role_of(user)
    if role is None:
        return Decision(user, space.id, Mode.not_member)

    by_target: dict[tuple, list[Subscription]] = {}
    for sub in subscriptions:
        if sub.user == user:
            by_target.setdefault(sub.target.key, []).append(sub)

    missing: list[Missing] = []
    sandboxed_by: list[Target] = []
    remains: list[Target] = []
    for req in requirements(space, lineage_enforced):
        candidates = [s for t in req.any_of for s in by_target.get(t.key, [])]
        active = [s for s in candidates if s.is_active(now)]
        if not active:
            missing.append(
                Missing(req.target, _missing_reason(candidates, now), req.via, req.remains)
            )
        elif not any(s.level == Level.full for s in active):
            sandboxed_by.append(req.target)
            if req.remains:
                remains.append(req.target)

    if missing:
        return Decision(user, space.id, Mode.locked, role, tuple(missing))
    if sandboxed_by:
        return Decision(
            user, space.id, Mode.sandbox, role, (), tuple(sandboxed_by), tuple(remains)
        )
    return Decision(user, space.id, Mode.workbench, role)


def decided_until(subscriptions: Iterable[Subscription], now: datetime) -> datetime | None:
    """Until when a decision made at ``now`` from ``subscriptions`` stays right by time
    alone: the first expiry after ``now`` of one that is active at ``now`` (when it
    expires, access it gave ends), or None when no expiry is ahead. Nothing else in a
    decision depends on the time."""
    ahead = [s.expires_at for s in subscriptions if s.is_active(now) and s.expires_at is not None]
    return min(ahead, default=None)
