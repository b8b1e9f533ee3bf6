"""What a space session is made of: the context the spawner builds and the parts that
use it.

When a user activates a space, the spawner (:mod:`jupyterhub_spaces.spawner`) loads the
space from the store, evaluates the policy and builds one :class:`SessionContext`. It
then runs every *session part* listed in :data:`PARTS`, in order, before the session
process (or pod) starts, and runs them again in reverse order when the session stops.

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
import logging
from dataclasses import dataclass, field
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
