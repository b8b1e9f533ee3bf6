"""The spaces catalog as SQLAlchemy 2 models.

Every schema change is an alembic revision in ``jupyterhub_spaces/alembic/versions``;
``jupyterhub-spaces upgrade-db`` applies them and the service refuses to start on a
database at another revision (see :mod:`jupyterhub_spaces.store`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .utils import utcnow


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")


class OrgVisibility(Base):
    """``seer``'s users may see (and invite) ``seen``'s users. Set by an admin."""

    __tablename__ = "org_visibility"

    seer_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    seen_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )


class User(Base):
    """A JupyterHub user, by name, with the organization they belong to."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    org: Mapped[Organization | None] = relationship()


#: SQLite: never hand out the id of a deleted row again (PostgreSQL never does)
NEVER_REUSED = {"sqlite_autoincrement": True}


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (NEVER_REUSED,)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    owner_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)

    owner_org: Mapped[Organization] = relationship()
    assets: Mapped[list[Asset]] = relationship(back_populates="product", order_by="Asset.id")


class Asset(Base):
    """Data: a table or a set of files. Primary assets belong to a product; derived
    assets (published from a space) have none and carry lineage edges instead."""

    __tablename__ = "assets"
    __table_args__ = (
        CheckConstraint("kind in ('table', 'files')", name="asset_kind"),
        UniqueConstraint("product_id", "name", name="asset_name_in_product"),
        NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(10))
    #: where the data lives: a path or URL for files, a table reference for tables
    location: Mapped[str] = mapped_column(Text, default="")
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), index=True)
    owner_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    derived: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the space a derived asset was published from
    source_space_id: Mapped[int | None] = mapped_column(
        ForeignKey("spaces.id", ondelete="SET NULL")
    )
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    product: Mapped[Product | None] = relationship(back_populates="assets")
    owner_org: Mapped[Organization] = relationship()


class LineageEdge(Base):
    """A derived asset was made from an asset or a whole product."""

    __tablename__ = "lineage_edges"
    __table_args__ = (
        CheckConstraint(
            "(source_asset_id IS NULL) <> (source_product_id IS NULL)", name="one_source"
        ),
        Index("ix_lineage_source_asset", "source_asset_id"),
        Index("ix_lineage_source_product", "source_product_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), index=True
    )
    source_asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id"))
    source_product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))


class LineageClosure(Base):
    """Something a derived asset was made from, at any depth: one row per product and
    per asset its lineage edges reach, directly or through other derived assets.

    Published lineage never changes, so the rows are written once, with the edges,
    by :func:`jupyterhub_spaces.store.record_lineage`. ``leaf`` marks what ends a
    path (a product, a primary asset, a derived asset without lineage of its own):
    the sources the access rule asks subscriptions for.
    """

    __tablename__ = "asset_lineage_closure"
    __table_args__ = (
        CheckConstraint(
            "(source_asset_id IS NULL) <> (source_product_id IS NULL)", name="closure_one_source"
        ),
        UniqueConstraint("asset_id", "source_asset_id", name="closure_asset_once"),
        UniqueConstraint("asset_id", "source_product_id", name="closure_product_once"),
        Index("ix_closure_source_asset", "source_asset_id"),
        Index("ix_closure_source_product", "source_product_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    source_asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id"))
    source_product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    leaf: Mapped[bool] = mapped_column(Boolean)


class Subscription(Base):
    """A user's subscription to a product or an asset."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint("level in ('full', 'spaces')", name="subscription_level"),
        CheckConstraint(
            "status in ('requested', 'active', 'revoked')", name="subscription_status"
        ),
        CheckConstraint("(product_id IS NULL) <> (asset_id IS NULL)", name="one_target"),
        UniqueConstraint("user_id", "product_id", name="one_per_user_product"),
        UniqueConstraint("user_id", "asset_id", name="one_per_user_asset"),
        NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), index=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id"), index=True)
    level: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="requested")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    requested_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    granted_by: Mapped[str | None] = mapped_column(String(255))

    user: Mapped[User] = relationship()
    product: Mapped[Product | None] = relationship()
    asset: Mapped[Asset | None] = relationship()


class Space(Base):
    """A space spec. ``slug`` is its short name, unique per owner only. Its id is
    never reused: every member's JupyterHub server for the space is named by it
    (``policy.server_name``), and the space databases and other per-space resources
    are keyed by it."""

    __tablename__ = "spaces"
    __table_args__ = (UniqueConstraint("owner_id", "slug", name="one_slug_per_owner"), NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(30))
    display_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    tools: Mapped[list] = mapped_column(JSON, default=list)
    profile: Mapped[str] = mapped_column(String(100))
    workers: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    owner: Mapped[User] = relationship()
    products: Mapped[list[SpaceProduct]] = relationship(
        cascade="all, delete-orphan", order_by="SpaceProduct.position"
    )
    assets: Mapped[list[SpaceAsset]] = relationship(
        cascade="all, delete-orphan", order_by="SpaceAsset.position"
    )
    collaborators: Mapped[list[Collaborator]] = relationship(
        cascade="all, delete-orphan", order_by="Collaborator.id"
    )
    #: written by the database itself (see :class:`SpaceTaint`), never through here
    taint: Mapped[list[SpaceTaint]] = relationship(viewonly=True, order_by="SpaceTaint.id")


class SpaceProduct(Base):
    __tablename__ = "space_products"

    space_id: Mapped[int] = mapped_column(
        ForeignKey("spaces.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    product: Mapped[Product] = relationship()


class SpaceAsset(Base):
    __tablename__ = "space_assets"

    space_id: Mapped[int] = mapped_column(
        ForeignKey("spaces.id", ondelete="CASCADE"), primary_key=True
    )
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    asset: Mapped[Asset] = relationship()


class SpaceTaint(Base):
    """A product or asset that was part of a space since its Collaborative and Publish
    data were last purged: rows of it may remain there, so every decision for the
    space and every lineage of a publish from it counts it.

    The catalog database writes these rows itself: triggers on ``space_products`` and
    ``space_assets`` (revision 0002) add one whenever a space gains a product or an
    asset, whatever code adds it, and nothing removes one when the spec drops it. Only
    a purge of the space's data resets them (:mod:`jupyterhub_spaces.databases.purge`).
    """

    __tablename__ = "space_taint"
    __table_args__ = (
        CheckConstraint("(product_id IS NULL) <> (asset_id IS NULL)", name="taint_one_source"),
        UniqueConstraint("space_id", "product_id", name="taint_once_per_product"),
        UniqueConstraint("space_id", "asset_id", name="taint_once_per_asset"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), index=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id"), index=True)
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    product: Mapped[Product | None] = relationship()
    asset: Mapped[Asset | None] = relationship()


class Collaborator(Base):
    """A member of a space and their role. The owner is a member with role ``owner``."""

    __tablename__ = "collaborators"
    __table_args__ = (
        UniqueConstraint("space_id", "user_id", name="one_role_per_member"),
        CheckConstraint(
            "role in ('owner', 'editor', 'viewer', 'publisher')", name="collaborator_role"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    user: Mapped[User] = relationship()


class Activation(Base):
    """The last known activation of a space by a user: what the Spaces app shows
    beside JupyterHub's own server state (a failure keeps its reason here)."""

    __tablename__ = "activations"
    __table_args__ = (UniqueConstraint("space_id", "user_id", name="one_activation_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: starting, active, suspended or failed
    state: Mapped[str] = mapped_column(String(20))
    mode: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class AuditEvent(Base):
    """One governance decision or change: who did what to what, and the outcome."""

    __tablename__ = "audit_events"
    __table_args__ = (NEVER_REUSED,)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255), index=True)
    action: Mapped[str] = mapped_column(String(100), index=True)
    target_type: Mapped[str] = mapped_column(String(50), default="")
    target_id: Mapped[str] = mapped_column(String(100), default="")
    outcome: Mapped[str] = mapped_column(String(20), default="ok")
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


# ---------------------------------------------------------------------------
# Code Assets and Tasks (revision 0004)


class CodeBlob(Base):
    """One file's content, stored once whatever how many versions hold it, by its
    SHA-256 (content addressing: a version is a list of paths and these hashes)."""

    __tablename__ = "code_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class CodeAsset(Base):
    """Code saved from a space (a notebook, a script or a folder), with its versions."""

    __tablename__ = "code_assets"
    __table_args__ = (
        UniqueConstraint("space_id", "name", name="code_asset_name_in_space"),
        CheckConstraint("kind in ('notebook', 'script', 'folder')", name="code_asset_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    versions: Mapped[list[CodeAssetVersion]] = relationship(
        cascade="all, delete-orphan", order_by="CodeAssetVersion.number"
    )


class CodeAssetVersion(Base):
    """An immutable snapshot of a Code Asset: ``manifest`` maps each relative path to
    the SHA-256 of its content; ``hash`` is the SHA-256 of the manifest itself.
    ``lineage`` is what the space held when it was saved (products and assets)."""

    __tablename__ = "code_asset_versions"
    __table_args__ = (UniqueConstraint("code_asset_id", "number", name="one_version_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code_asset_id: Mapped[int] = mapped_column(
        ForeignKey("code_assets.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64), index=True)
    manifest: Mapped[dict] = mapped_column(JSON)
    #: the file a Task runs (a notebook or a Python script), a path of the manifest
    entry: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    source_space_id: Mapped[int | None] = mapped_column(Integer)
    lineage: Mapped[dict] = mapped_column(JSON, default=dict)


class Task(Base):
    """Background work of a space: one Code Asset version run on a schedule or on
    demand, as its owner. Airflow runs it (one DAG per task, see
    :mod:`jupyterhub_spaces.airflow`)."""

    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("space_id", "name", name="task_name_in_space"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("code_asset_versions.id"), index=True)
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    #: a cron expression, or None for on demand only
    schedule: Mapped[str | None] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    profile: Mapped[str] = mapped_column(String(100))
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    #: tables of the Publish database to publish after a successful run:
    #: [{"table": ..., "name": ...}]
    publish: Mapped[list] = mapped_column(JSON, default=list)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    owner: Mapped[User] = relationship()
    version: Mapped[CodeAssetVersion] = relationship()


class TaskRun(Base):
    """One attempt of a Task, or of one step of a YAML DAG (``task_id`` null, ``dag_id``
    and ``step`` set), as the engine reported it (refusals included)."""

    __tablename__ = "task_runs"
    __table_args__ = (
        CheckConstraint(
            "state in ('running', 'success', 'failed', 'refused', 'cancelled')", name="task_run_state"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    #: the space and the member the run runs for (and as)
    space_id: Mapped[int | None] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: a YAML DAG step's Airflow DAG id and step name ("" for a Task's run)
    dag_id: Mapped[str] = mapped_column(String(250), default="")
    step: Mapped[str] = mapped_column(String(100), default="")
    #: SHA-256 of the run's own credential for the service's run endpoints ("" : none)
    token_hash: Mapped[str] = mapped_column(String(64), default="")
    engine_run_id: Mapped[str] = mapped_column(String(250), default="")
    try_number: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    log: Mapped[str] = mapped_column(Text, default="")
    #: ids of the derived assets this run published
    published: Mapped[list] = mapped_column(JSON, default=list)


class CatalogRevision(Base):
    """One row whose ``value`` every committed write to a table that answers are
    built from raises, in the writing transaction (database triggers, revision
    0007): an answer cached under one value is current while the value is."""

    __tablename__ = "catalog_revision"
    __table_args__ = (CheckConstraint("id = 1", name="one_revision_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)
