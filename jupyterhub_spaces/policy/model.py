"""Plain data the governance rules work on.

Everything here is an immutable value built by the store (or by a test) and handed
to the pure functions in this package. Nothing here talks to a database or network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum


class Level(str, Enum):
    """How far a subscription lets its holder take the data."""

    #: use and export
    full = "full"
    #: use inside spaces only: the session is a Sandbox
    spaces = "spaces"


class SubscriptionStatus(str, Enum):
    requested = "requested"
    active = "active"
    revoked = "revoked"


class Role(str, Enum):
    """A collaborator's role in one space."""

    owner = "owner"
    editor = "editor"
    viewer = "viewer"
    publisher = "publisher"


class Mode(str, Enum):
    """The outcome of the access decision for one user and one space."""

    not_member = "not_member"
    locked = "locked"
    sandbox = "sandbox"
    workbench = "workbench"


TOOLS = ("jupyterlab", "rstudio", "superset", "sqllab")


@dataclass(frozen=True)
class Target:
    """A product or an asset: the thing a subscription is for."""

    kind: str  # "product" or "asset"
    id: int
    name: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.kind, self.id)


@dataclass(frozen=True)
class AssetRef:
    """An asset of a space, with the product it belongs to (None for derived assets)
    and, for derived assets, every product and asset it was made from."""

    id: int
    name: str = ""
    product_id: int | None = None
    product_name: str = ""
    upstream_products: tuple[Target, ...] = ()
    upstream_assets: tuple[Target, ...] = ()

    @property
    def derived(self) -> bool:
        return bool(self.upstream_products or self.upstream_assets)


@dataclass(frozen=True)
class Subscription:
    user: str
    target: Target
    level: Level
    status: SubscriptionStatus = SubscriptionStatus.active
    expires_at: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        if self.status != SubscriptionStatus.active:
            return False
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True)
class SpaceSpec:
    """What the rules need to know of a space."""

    id: int
    owner: str
    products: tuple[Target, ...] = ()
    assets: tuple[AssetRef, ...] = ()
    collaborators: tuple[tuple[str, Role], ...] = ()

    def role_of(self, user: str) -> Role | None:
        if user == self.owner:
            return Role.owner
        for name, role in self.collaborators:
            if name == user:
                return Role(role)
        return None

    @property
    def members(self) -> tuple[str, ...]:
        names = [self.owner]
        names.extend(name for name, _ in self.collaborators if name != self.owner)
        return tuple(names)


@dataclass(frozen=True)
class Missing:
    """A subscription the user needs and does not have (or no longer has)."""

    target: Target
    reason: str  # "missing", "expired", "revoked" or "requested"
    #: for an upstream requirement of a derived asset: the asset that needs it
    via: Target | None = None

    @property
    def message(self) -> str:
        what = f"{self.target.kind} '{self.target.name or self.target.id}'"
        via = f" (a source of derived asset '{self.via.name}')" if self.via else ""
        return {
            "missing": f"no subscription to {what}{via}: request one in the catalog",
            "expired": f"the subscription to {what}{via} has expired: ask an admin to renew it",
            "revoked": f"the subscription to {what}{via} was revoked: request it again",
            "requested": f"the subscription to {what}{via} is requested and waits for an admin",
        }[self.reason]


@dataclass(frozen=True)
class Decision:
    """The access decision for one user and one space, with its reasons."""

    user: str
    space_id: int
    mode: Mode
    role: Role | None = None
    missing: tuple[Missing, ...] = ()
    #: the targets whose `spaces`-level subscription makes this a Sandbox
    sandboxed_by: tuple[Target, ...] = field(default=())

    @property
    def can_activate(self) -> bool:
        return self.mode in (Mode.sandbox, Mode.workbench)

    @property
    def reason(self) -> str:
        if self.mode == Mode.not_member:
            return f"{self.user} is not a member of this space"
        if self.mode == Mode.locked:
            return "locked: " + "; ".join(m.message for m in self.missing)
        if self.mode == Mode.sandbox:
            names = ", ".join(f"{t.kind} '{t.name or t.id}'" for t in self.sandboxed_by)
            return f"sandbox: spaces-only subscription to {names}; data cannot leave the session"
        return "workbench: full subscriptions to every product and asset"
