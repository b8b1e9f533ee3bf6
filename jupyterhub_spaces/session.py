"""What a space session is made of: the context the spawner builds and the parts that
use it.

When a user activates a space, the spawner (:mod:`jupyterhub_spaces.spawner`) asks the
store once for the space and the user's decision, and :func:`make_context` (pure)
turns them and the machine profile into one :class:`SessionContext`: the session's
environment, its data mounts and the inputs of every part. The spawner then runs every
*session part* listed in :data:`PARTS`, in order, before the session process (or pod)
starts, and runs them again in reverse order when the session stops. Parts take what
they need from the context; none loads the space again.

A session part is any object with this shape (see :class:`SessionPart`)::

    class MyPart:
        name = "my-part"

        async def start(self, ctx: SessionContext) -> dict[str, str]:
            # prepare what the session needs (a database role, a config file, ...)
            # and return the environment variables the session should see
            return {"MY_PART_URL": "..."}

        async def stop(self, ctx: SessionContext) -> None:
            # undo what start did; must be safe to call more than once and after a
            # hub restart (ctx is then rebuilt from the store, ctx.state is empty)
            ...

    part = MyPart()

To plug a part in, add its import path (``"package.module:attribute"``) to
:data:`PARTS` with a one-line edit. Import paths keep this module light: the spawner
imports a part only when a session starts. A part that cannot do its job raises
:class:`SessionPartError` with a message saying what is wrong and what to do; the
activation then fails with that reason (parts already started are stopped again).

Parts must not trust anything the user sent: everything they need is in the context,
which the spawner builds from the store and the policy decision alone.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .policy import Decision, Mode, SpaceSpec, server_name

if TYPE_CHECKING:  # pragma: no cover
    from .settings import SpacesSettings

log = logging.getLogger(__name__)

#: Session parts, run in this order at start and in reverse order at stop.
#: Each entry is ``"module:attribute"`` naming an object that follows :class:`SessionPart`.
PARTS: list[str] = [
    "jupyterhub_spaces.databases.part:part",
    "jupyterhub_spaces.tools.part:part",
]


class SessionPartError(RuntimeError):
    """A session part cannot prepare the session; the message is shown to the user
    as the reason the activation failed."""


@runtime_checkable
class SessionPart(Protocol):
    """One piece of a session (databases, tools, sandbox gateway, ...)."""

    name: str

    async def start(self, ctx: SessionContext) -> dict[str, str]:
        """Prepare this part for ``ctx`` and return env vars for the session."""

    async def stop(self, ctx: SessionContext) -> None:
        """Undo :meth:`start`; idempotent, and works on a context rebuilt after a restart."""


@dataclass(frozen=True)
class AssetInfo:
    """An asset of the space the user may use in this session."""

    id: int
    name: str
    #: "table" or "files"
    kind: str
    #: table name in ``settings.source_db_url`` for tables, path under
    #: ``settings.data_root`` for files
    location: str
    #: the product it belongs to ("" for derived assets)
    product: str = ""
    derived: bool = False


@dataclass(frozen=True)
class AssetMount:
    """A ``files`` asset mounted read-only into the session."""

    asset_id: int
    product: str
    asset: str
    #: absolute path of the data on the hub's machine (local sessions), or the path
    #: relative to the assets volume (Kubernetes)
    source: str
    #: path inside the session, relative to its home: ``assets/<product>/<asset>``
    target: str


@dataclass
class SessionContext:
    """Everything a session part may need to know about one activation.

    Built by the spawner from the store and the policy decision, never from the
    user's request.
    """

    #: JupyterHub user name
    user: str
    space_id: int
    #: the space's slug (its short name, unique per owner only)
    slug: str
    display_name: str
    spec: SpaceSpec
    decision: Decision
    settings: SpacesSettings
    #: tools the space selected (names from ``policy.TOOLS``)
    tools: tuple[str, ...] = ()
    profile_name: str = ""
    #: the machine profile from ``settings.machine_profiles``
    profile: dict = field(default_factory=dict)
    workers: int = 0
    #: the session's persistent working directory (its home): on the hub's machine for
    #: local sessions, inside the pod for Kubernetes sessions
    workdir: str = ""
    #: every asset the user may use (tables and files)
    assets: tuple[AssetInfo, ...] = ()
    #: read-only mounts of the ``files`` assets
    mounts: tuple[AssetMount, ...] = ()
    #: "local" or "kubernetes": how the session runs
    backend: str = "local"
    #: the URL prefix of the session (``/user/<name>/space-<id>/``)
    server_url: str = ""
    #: the spawner, for parts that need backend details (may be None in tests)
    spawner: Any = None
    #: scratch space parts may use to pass things from start to stop in one process
    state: dict = field(default_factory=dict)
    #: when the space was created (its databases are named after it)
    created_at: datetime | None = None
    #: the session's environment from the space and its machine profile (the parts
    #: add their own at start)
    env: dict = field(default_factory=dict)

    @property
    def server(self) -> str:
        """The JupyterHub named-server name of the session (``space-<id>``)."""
        return server_name(self.space_id)

    @property
    def mode(self) -> Mode:
        return self.decision.mode

    @property
    def sandbox(self) -> bool:
        return self.decision.mode == Mode.sandbox


def path_part(name: str) -> str:
    """A product or asset name as one path component."""
    return name.replace("/", "-").replace("\0", "").strip(". ") or "unnamed"


def asset_mounts(assets: list[AssetInfo], data_root: str) -> list[AssetMount]:
    """Read-only mounts of the ``files`` assets at ``assets/<product>/<asset>``.

    Raises ValueError for a location that leaves ``data_root``.
    """
    mounts = []
    root = os.path.realpath(data_root) if data_root else ""
    for asset in assets:
        if asset.kind != "files":
            continue
        source = os.path.realpath(os.path.join(root, asset.location)) if root else asset.location
        if root and os.path.commonpath([root, source]) != root:
            raise ValueError(f"asset {asset.name!r} points outside the data root: {asset.location!r}")
        product = path_part(asset.product) if asset.product else "derived"
        target = f"assets/{product}/{path_part(asset.name)}"
        mounts.append(AssetMount(asset.id, product, path_part(asset.name), source, target))
    return mounts


def profile_env(name: str, profile: dict, workers: int) -> dict[str, str]:
    """The machine profile as environment variables of the session."""
    env = {"SPACES_PROFILE": name, "SPACES_WORKERS": str(workers)}
    for key in ("cpu_limit", "cpu_guarantee", "mem_limit", "mem_guarantee"):
        if profile.get(key) not in (None, ""):
            env[f"SPACES_{key.upper()}"] = str(profile[key])
    return env


def space_env(ctx: SessionContext) -> dict[str, str]:
    """What the session is told about its space."""
    return {
        "SPACES_SPACE_ID": str(ctx.space_id),
        "SPACES_SPACE": ctx.slug,
        "SPACES_SPACE_NAME": ctx.display_name,
        "SPACES_MODE": ctx.mode.value,
        "SPACES_TOOLS": ",".join(ctx.tools),
        "SPACES_ASSETS": json.dumps([m.target for m in ctx.mounts]),
    }


def make_context(
    user: str,
    space,
    assets,
    spec: SpaceSpec,
    decision: Decision,
    settings: SpacesSettings,
    *,
    offered_tools=None,
    backend: str = "local",
    spawner: Any = None,
) -> SessionContext:
    """Everything a backend and the parts need for ``user``'s session of ``space``.

    ``space`` is the space's catalog row (or anything with its attributes: ``id``,
    ``slug``, ``display_name``, ``profile``, ``workers``, ``tools``, ``created_at``);
    ``assets`` the assets the session gets (:func:`jupyterhub_spaces.store.session_assets`);
    ``spec`` and ``decision`` the policy's view and verdict. Nothing here reads the
    store or the user's request. Raises ValueError for an asset that points outside
    the data root.
    """
    profiles = settings.machine_profiles
    profile_name = space.profile if space.profile in profiles else settings.default_profile
    infos = tuple(
        AssetInfo(
            id=a.id,
            name=a.name,
            kind=a.kind,
            location=a.location,
            product=a.product.name if a.product else "",
            derived=a.derived,
        )
        for a in assets
    )
    offered = None if offered_tools is None else set(offered_tools)
    ctx = SessionContext(
        user=user,
        space_id=space.id,
        slug=space.slug,
        display_name=space.display_name,
        spec=spec,
        decision=decision,
        settings=settings,
        tools=tuple(t for t in space.tools or () if offered is None or t in offered),
        profile_name=profile_name,
        profile=dict(profiles[profile_name]),
        workers=space.workers,
        assets=infos,
        mounts=tuple(asset_mounts(list(infos), settings.data_root)),
        backend=backend,
        spawner=spawner,
        created_at=space.created_at,
    )
    ctx.env = {**space_env(ctx), **profile_env(profile_name, ctx.profile, ctx.workers)}
    return ctx


def load_part(path: str) -> SessionPart:
    """Import ``"module:attribute"`` and check it is a session part."""
    module_name, _, attr = path.partition(":")
    if not attr:
        raise ValueError(f"session part {path!r} must be written 'module:attribute'")
    obj = getattr(importlib.import_module(module_name), attr)
    if not isinstance(obj, SessionPart):
        raise TypeError(f"session part {path!r} lacks name, start(ctx) or stop(ctx)")
    return obj


def load_parts(paths: list[str] | None = None) -> list[SessionPart]:
    return [load_part(p) for p in (PARTS if paths is None else paths)]


async def start_parts(ctx: SessionContext, parts: list[SessionPart]) -> dict[str, str]:
    """Start ``parts`` in order and return their merged env.

    When a part fails, the parts already started are stopped (in reverse order) and
    the error is raised again, so a failed activation leaves nothing behind.
    """
    env: dict[str, str] = {}
    started: list[SessionPart] = []
    try:
        for part in parts:
            part_env = await part.start(ctx) or {}
            started.append(part)
            env.update({str(k): str(v) for k, v in part_env.items()})
    except BaseException:
        await stop_parts(ctx, started)
        raise
    return env


async def stop_parts(ctx: SessionContext, parts: list[SessionPart]) -> None:
    """Stop ``parts`` in reverse order; one failing part does not keep the others
    from stopping (the failure is logged)."""
    for part in reversed(parts):
        try:
            await part.stop(ctx)
        except Exception:
            log.exception("session part %s failed to stop for %s/%s", part.name, ctx.user, ctx.slug)
