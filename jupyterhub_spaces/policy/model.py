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


def subscription_expired(expires_at: datetime | None, now: datetime) -> bool:
    """Whether a subscription expiring at ``expires_at`` (None: never) has expired."""
    return expires_at is not None and expires_at <= now


def subscription_active(status: SubscriptionStatus | str, expires_at: datetime | None, now: datetime) -> bool:
    """Whether a subscription gives access at ``now``: granted (status active) and
    not expired. The one rule of subscription validity: the access decision, the
    catalog's view of a subscription and the request checks all ask it."""
    return SubscriptionStatus(status) == SubscriptionStatus.active and not subscription_expired(expires_at, now)


@dataclass(frozen=True)
class Subscription:
    user: str
    target: Target
    level: Level
    status: SubscriptionStatus = SubscriptionStatus.active
    expires_at: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        return subscription_active(self.status, self.expires_at, now)


@dataclass(frozen=True)
class SpaceSpec:
    """What the rules need to know of a space.

    ``taint_products`` and ``taint_assets`` are the space's *taint*: every product and
    asset that was ever part of it since its Collaborative and Publish data were last
    purged (current ones included or not: the rules take the union with the spec).
    Rows of any of them may remain in those databases, so every decision and every
    publish counts them as if they were still in the spec.
    """

    id: int
    owner: str
    products: tuple[Target, ...] = ()
    assets: tuple[AssetRef, ...] = ()
    collaborators: tuple[tuple[str, Role], ...] = ()
    taint_products: tuple[Target, ...] = ()
    taint_assets: tuple[AssetRef, ...] = ()

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
    #: the requirement comes from the space's taint only: no longer in the spec, but
    #: its data may remain in the space's databases
    remains: bool = False

    @property
    def message(self) -> str:
        what = label(self.target)
        notes = [f"a source of derived asset '{self.via.name}'"] if self.via else []
        if self.remains:
            notes.append(remains_note(self.via or self.target))
        note = f" ({'; '.join(notes)})" if notes else ""
        text = {
            "missing": f"no subscription to {what}{note}: request one in the catalog",
            "expired": f"the subscription to {what}{note} has expired: ask an admin to renew it",
            "revoked": f"the subscription to {what}{note} was revoked: request it again",
            "requested": f"the subscription to {what}{note} is requested and waits for an admin",
        }[self.reason]
        if self.remains:
            text += ", or ask an administrator to purge the space's Collaborative and Publish data"
        return text


def label(target: Target) -> str:
    """How a message names a product or an asset."""
    return f"{target.kind} '{target.name or target.id}'"


def remains_note(target: Target) -> str:
    """Why a product or asset no longer in the spec still counts."""
    return f"data from {label(target)} remains in this space's databases"


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
    #: those of ``sandboxed_by`` required by the space's taint only
    remains: tuple[Target, ...] = field(default=())

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
            names = ", ".join(
                label(t) + (f" ({remains_note(t)})" if t in self.remains else "")
                for t in self.sandboxed_by
            )
            return f"sandbox: spaces-only subscription to {names}; data cannot leave the session"
        return "workbench: full subscriptions to every product and asset"
