"""Spawners that start a space session: JupyterHub named servers, one per space.

A space's session is the user's named server ``space-<id>`` (:func:`policy.server_name`
of the space's id, never reused; its ``display_name`` is the space's human name). The
space's slug is only its short name: slugs are unique per owner, not across the hub. Whoever asks for it (the Spaces app, the
spaces API, or the user calling the hub's REST API directly), the spawner decides what
the session gets:

- the space is found from the **server name**; ``user_options`` may only repeat the
  space id (anything else in them is ignored, a different space id is refused);
- the **policy** is evaluated here, from the store: not a member or locked is refused
  with a message naming the missing subscriptions; sandbox or workbench decides the
  session's mode;
- **one active space per user**: a start while another space of the user is active,
  starting or stopping is refused with 409 naming it. The check and the claim happen
  under a per-user lock inside the hub process, so concurrent starts cannot both pass;
  a refused server that never ran before leaves no record behind;
- the **machine profile**, **data mounts** and **session parts** come from the store
  and settings only.

The default (unnamed) server is not a space and never starts: its error points to the
Spaces app.

:class:`SpaceSpawnerMixin` holds all of this; :class:`LocalSpaceSpawner` (local
processes, the embedded default) and :class:`KubeSpaceSpawner` (KubeSpawner) add the
backend.
"""

from __future__ import annotations

import asyncio
import html
import os
import shutil
import sys
import weakref

from jupyterhub.spawner import LocalProcessSpawner
from jupyterhub.utils import url_path_join
from tornado import web
from traitlets import Bool, Callable, Instance, Integer, List, Tuple, Unicode, default
from traitlets.config import Configurable

from . import accounts, isolate, policy, session
from .admission import StartRefused, admit, refusal_audit
from .session import SessionContext
from .settings import SpacesSettings
from .store import ActivationState, Store, record_activation, session_assets, shared

_locks: dict[str, asyncio.Lock] = {}
#: user name -> the spawner that holds the user's one active-space claim
_claims: dict[str, weakref.ReferenceType] = {}


def _user_lock(user: str) -> asyncio.Lock:
    if user not in _locks:
        _locks[user] = asyncio.Lock()
    return _locks[user]


def _claim_holder(user: str):
    ref = _claims.get(user)
    holder = ref() if ref else None
    if ref and holder is None:
        _claims.pop(user, None)
    return holder


def active_elsewhere(user, name: str, me=None, starting: bool = False) -> str | None:
    """The name of another server of hub ``user`` than ``name`` that holds the user's
    one active-space claim, or is running or stopping (or, with ``starting``, has a
    start pending); None when there is none.

    The spawner leaves ``starting`` off: a start still before its claim may yet be
    refused, and two such starts must not refuse each other. The hub's gate turns it
    on: it runs before the hub marks the new start pending, in the same turn."""
    holder = _claim_holder(user.name)
    if holder is not None and holder is not me and holder.name != name:
        return holder.name
    for other, sp in user.spawners.items():
        if other == name or sp is me:
            continue
        if sp.ready or getattr(sp, "_stop_pending", False) or (starting and sp.pending):
            return other
    return None


def _error_message(exc: BaseException) -> str:
    if isinstance(exc, web.HTTPError):
        return exc.log_message or str(exc)
    return str(exc) or type(exc).__name__


class SpaceSpawnerMixin(Configurable):
    """The space logic shared by the local and the Kubernetes spawners.

    Mix in before a JupyterHub spawner class: ``class S(SpaceSpawnerMixin, Base)``.
    """

    spaces_settings = Instance(SpacesSettings, help="The shared spaces settings.")

    @default("spaces_settings")
    def _default_spaces_settings(self):
        return SpacesSettings(parent=self)

    spaces_app_url = Unicode(
        help="Where users manage and activate spaces (default: the spaces service's "
        "prefix under the hub's base URL).",
    ).tag(config=True)

    offered_tools = List(
        Unicode(),
        default_value=list(policy.TOOLS),
        help="The tools this site offers in sessions (names from policy.TOOLS). A tool a "
        "space selected but the site does not offer is left out of the session, as if "
        "the space had not selected it (the Helm chart's tools.*.enabled set this).",
    ).tag(config=True)

    @default("spaces_app_url")
    def _default_spaces_app_url(self):
        base = getattr(self.hub, "base_url", "/hub/") if self.hub else "/hub/"
        root = base[: -len("hub/")] if base.endswith("hub/") else "/"
        return url_path_join(root, "services", self.spaces_settings.service_name, "/")

    backend = "local"

    @default("options_form")
    def _default_options_form(self):
        return _options_form


    # -- state kept across stops: marks a server that once ran as a space session

    _ran_before = False

    def load_state(self, state):
        super().load_state(state)
        if state.get("space_id"):
            self._ran_before = True
        self._session_url = state.get("session_url")
        self._session_token = state.get("session_token")
        # a session started by an earlier hub process (cleanup_servers=False)
        self._restored = bool(state.get("session_url"))

    def get_state(self):
        state = super().get_state()
        if self._ran_before:
            state["space_id"] = self._space_id or True
        server = getattr(self, "server", None)
        if self._ctx is not None and server is not None and server.port:
            # where the spaces service reaches the session directly (admin:server_state),
            # and the session's own token to ask it with: the service never sends its
            # own powerful token to a process the user controls
            self._session_url = server.host + server.base_url
            self._session_token = self.api_token
        if self._session_url:
            state["session_url"] = self._session_url
            state["session_token"] = self._session_token
        return state

    _session_url = None
    _session_token = None
    _restored = False

    def clear_state(self):
        super().clear_state()
        self._session_url = None
        self._session_token = None

    _space_id = None
    _ctx: SessionContext | None = None
    _parts: list = ()
    _session_env: dict = {}

    @property
    def store(self) -> Store:
        return shared(self.spaces_settings.db_url)

    def _record(self, ctx: SessionContext, state: ActivationState, **kwargs) -> None:
        """Write this session's activation state (one short transaction)."""
        with self.store.transaction() as db:
            record_activation(db, ctx.space_id, ctx.user, state, **kwargs)

    # -- the checks, in order

    def _refuse(self, status: int, message: str, **detail) -> web.HTTPError:
        refused = StartRefused(status, message, **detail)
        refusal_audit(self.store, self.user.name, self.name, refused, via="spawner")
        return web.HTTPError(status, message)

    def _load(self, for_stop: bool = False) -> SessionContext | None:
        """Load the space named like this server and decide; refuse what the policy
        does not allow. ``for_stop`` rebuilds the context of a session that is already
        running (after a hub restart) to stop its parts: nothing is refused then, and
        a space deleted meanwhile gives None."""
        if for_stop:
            try:
                return self._build(for_stop=True)
            except web.HTTPError:
                return None
        return self._build()

    def _build(self, for_stop: bool = False) -> SessionContext:
        """Ask the store once for the space and the decision; build the context."""
        if not self.name:
            raise self._refuse(
                400,
                "the default server is not a space: open the Spaces app at "
                f"{self.spaces_app_url} and activate a space there",
            )
        settings = self.spaces_settings
        with self.store.transaction() as db:
            try:
                admitted = admit(
                    db, self.user.name, self.name, settings, self.spaces_app_url,
                    (self.user_options or {}).get("space_id"), refuse=not for_stop, for_session=True,
                )
            except StartRefused as refused:
                raise self._refuse(refused.status, refused.message, **refused.detail)
            if admitted is None:
                raise web.HTTPError(404, f"there is no space {self.name!r}")
            assets = session_assets(admitted.space)
            try:
                return session.make_context(
                    self.user.name, admitted.space, assets, admitted.spec, admitted.decision, settings,
                    offered_tools=self.offered_tools, backend=self.backend, spawner=self,
                )
            except ValueError as e:
                raise self._refuse(500, f"cannot mount the data of this space: {e}")

    async def rename(self, old_name, new_name):
        """Refuse every rename (``PATCH /hub/api/users/{u}/servers/{name}`` with a new
        ``name``): a space's server is named by the space's id, so a rename could only
        break the session's link to its space or put another server onto a space."""
        raise self._refuse(
            409,
            f"servers here are spaces and keep their space's name: {old_name!r} cannot be "
            f"renamed to {str(new_name)[:40]!r}; create or rename spaces in the Spaces app "
            f"at {self.spaces_app_url}",
        )

    def _other_active(self) -> str | None:
        """The name of another space of this user that is active, starting or stopping."""
        return active_elsewhere(self.user, self.name, self)

    def _conflict_message(self, other: str) -> str:
        return policy.one_active_conflict(self.name, [other]) or f"space {other!r} is active"

    async def start(self):
        async with _user_lock(self.user.name):
            try:
                ctx = self._load()
                other = self._other_active()
                if other is not None:
                    raise self._refuse(409, self._conflict_message(other), active=other)
            except web.HTTPError:
                self._forget_if_new()
                raise
            # claimed: from here on every other start of this user is refused
            _claims[self.user.name] = weakref.ref(self)
        self._ctx = ctx
        self._space_id = ctx.space_id
        self._restored = False
        parts_started = False
        try:
            self._record(ctx, ActivationState.starting, mode=ctx.mode.value)
            self._parts = session.load_parts()
            env = dict(ctx.env)
            self._apply_profile(ctx)
            await self._prepare_backend(ctx)
            env.update(await session.start_parts(ctx, self._parts))
            parts_started = True
            self._session_env = env
            result = await self._backend_start()
        except BaseException as e:
            self._release()
            # the hub stops this server next: its post-stop hook must not call the
            # failure a suspension
            self._ctx = None
            if parts_started:
                await session.stop_parts(ctx, list(self._parts))
            self._record(ctx, ActivationState.failed, reason=_error_message(e))
            raise
        self._ran_before = True
        self._watch_spawn(ctx)
        return result

    def _watch_spawn(self, ctx: SessionContext) -> None:
        """Record active / failed when the hub finishes the spawn (server up and routed)."""
        fut = getattr(self, "_spawn_future", None)
        if fut is None:
            self._record(ctx, ActivationState.active, mode=ctx.mode.value)
            return

        def done(f):
            if f.cancelled():
                state, reason = ActivationState.suspended, "the activation was cancelled"
            elif f.exception() is not None:
                state, reason = ActivationState.failed, _error_message(f.exception())
            elif self.ready:
                state, reason = ActivationState.active, ""
            else:
                return
            try:
                self._record(ctx, state, reason=reason)
            except Exception:
                self.log.exception("could not record activation of %s", self._log_name)

        fut.add_done_callback(done)

    def _forget_if_new(self) -> None:
        """After a refusal, remove this server's hub record if it never ran: a refused
        activation must not leave a stopped server behind."""
        if self._ran_before or not self.name:
            return
        fut = getattr(self, "_spawn_future", None)
        user, name = self.user, self.name

        def forget(_f=None):
            orm_spawner = user.orm_spawners.get(name)
            spawner = user.spawners.get(name)
            if spawner is not None and spawner.active:
                return  # started again meanwhile: it is not ours to remove
            if orm_spawner is not None and not (orm_spawner.state or {}).get("space_id"):
                user.spawners.pop(name, None)
                user.db.delete(orm_spawner)
                user.db.commit()

        if fut is not None:
            fut.add_done_callback(forget)
        else:
            # started outside spawn_single_user: wait until the hub has stopped it
            asyncio.get_running_loop().call_later(1, forget)

    def _release(self) -> None:
        if _claim_holder(self.user.name) is self:
            _claims.pop(self.user.name, None)

    def run_post_stop_hook(self):
        """Always called by the hub after the server stopped (also when it died)."""
        ctx, self._ctx = self._ctx, None
        self._release()
        result = super().run_post_stop_hook()
        parts = list(self._parts)
        restored, self._restored = self._restored, False
        if ctx is None and restored and self.name:
            # started by an earlier hub process (cleanup_servers=False): rebuild the
            # context from the store so every part can still clean up
            ctx = self._load(for_stop=True)
            parts = session.load_parts()

        async def after():
            if result is not None and hasattr(result, "__await__"):
                await result
            if ctx is not None:
                await session.stop_parts(ctx, parts)
                self._record(ctx, ActivationState.suspended, keep_reason=True)

        return after()

    # -- what the session gets

    async def _backend_start(self):
        """Start the session with the backend spawner (the next class in the MRO)."""
        return await super().start()

    def _apply_profile(self, ctx: SessionContext) -> None:
        """Set the backend's resource traits from the machine profile."""

    async def _prepare_backend(self, ctx: SessionContext) -> None:
        """Backend work before the session parts run (directories, volumes)."""

    def get_env(self):
        env = super().get_env()
        env.update(self._session_env)
        return env


def _options_form(spawner) -> str:
    """The hub's spawn page: for the default server (not a space) a page that sends the
    user to the Spaces app; named servers (spaces) need no form."""
    if spawner.name:
        return ""
    url = html.escape(spawner.spaces_app_url, quote=True)
    return (
        f'<meta http-equiv="refresh" content="0; url={url}">'
        f'<p>Sessions here are spaces. <a href="{url}">Open the Spaces app</a> '
        "and activate a space.</p>"
    )


def _sandbox_command(ctx: SessionContext) -> list[str]:
    """The Sandbox gateway command, or a refusal naming what to install."""
    try:
        from . import sandbox
    except ImportError:
        raise web.HTTPError(
            503, "this hub has no Sandbox support installed: a sandbox session cannot start"
        )
    missing = sandbox.missing_programs(getattr(ctx.spawner, "config", None))
    if missing:
        raise web.HTTPError(
            503,
            "a sandbox session needs these programs on the hub machine, which are not "
            f"installed: {', '.join(missing)}. Install them (see the sandbox docs) or ask "
            "for full subscriptions to get a workbench.",
        )
    return list(sandbox.gateway_command(ctx))


class LocalSpaceSpawner(SpaceSpawnerMixin, LocalProcessSpawner):
    """Space sessions as local processes (the embedded default).

    Each hub user's sessions run as an unprivileged Unix account of their own
    (:attr:`account_name_template`, created on first use), in a bubblewrap sandbox
    that shows them only their own home (one per space, mode 0700), their space's
    data and databases and the Python runtimes, read-only where their role may not
    write (see :mod:`jupyterhub_spaces.isolate`). The hub must run as root with
    bubblewrap installed; elsewhere sessions are refused, unless :attr:`isolate` is
    switched off for development.
    """

    home_dir_template = Unicode(
        "spaces-home/{username}/{space}",
        help="The persistent working directory (home) of a user's session of a space; "
        "{username} and {space} (the server name, space-<id>) are expanded. Relative to the hub's working "
        "directory unless absolute. Its parent directories are made private to the "
        "hub (0700); the home itself belongs to the session's account (0700).",
    ).tag(config=True)

    isolate = Bool(
        True,
        help="Run each session as its user's own unprivileged account in a bubblewrap "
        "sandbox (needs root and the 'bubblewrap' package; sessions are refused without "
        "them). False is for development only: sessions then run as the hub's own "
        "account and reach everything the hub can, and spaces with file assets cannot "
        "start.",
    ).tag(config=True)

    account_name_template = Unicode(
        "spaces-{username}",
        help="The Unix account a hub user's sessions run as; {username} is expanded and "
        "the result made a valid account name (a hash is appended when characters had "
        "to change, so two users never share an account).",
    ).tag(config=True)

    account_mapper = Callable(
        None,
        allow_none=True,
        help="A callable (spawner) -> account name, used instead of "
        "account_name_template, e.g. to map hub users onto existing accounts. An "
        "account with uid 0 or gid 0 is refused whatever the mapping says.",
    ).tag(config=True)

    create_accounts = Bool(
        True,
        help="Create a missing session account on first use (useradd, no login shell, "
        "no home of its own). False: the account must exist.",
    ).tag(config=True)

    account_uid_range = Tuple(
        Integer(),
        Integer(),
        default_value=None,
        allow_none=True,
        help="(low, high): the uids (and gids) of accounts this spawner creates. Unset: "
        "system accounts (useradd --system, the system uid range).",
    ).tag(config=True)

    @property
    def home_dir(self) -> str:
        path = self.home_dir_template.format(username=self.user.name, space=self.name)
        return os.path.abspath(path)

    @default("default_url")
    def _default_default_url(self):
        return "/lab"

    _cmd_override: list | None = None
    _account: accounts.Account | None = None

    def _apply_profile(self, ctx):
        # recorded and exported (MEM_LIMIT / CPU_LIMIT): local processes are not limited
        self.cpu_limit = float(ctx.profile["cpu_limit"]) if ctx.profile.get("cpu_limit") else None
        self.cpu_guarantee = (
            float(ctx.profile["cpu_guarantee"]) if ctx.profile.get("cpu_guarantee") else None
        )
        self.mem_limit = ctx.profile.get("mem_limit") or None
        self.mem_guarantee = ctx.profile.get("mem_guarantee") or None

    def account_name(self) -> str:
        if self.account_mapper is not None:
            return str(self.account_mapper(self))
        return accounts.account_name(self.account_name_template, self.user.name)

    async def _prepare_backend(self, ctx):
        home = self.home_dir
        self._cmd_override = _sandbox_command(ctx) if ctx.sandbox else None
        if self.isolate:
            why = isolate.missing()
            if why:
                raise web.HTTPError(
                    503,
                    f"cannot start an isolated session on this host: {why}. "
                    "(LocalSpaceSpawner.isolate = False runs sessions unisolated, as the "
                    "hub's own account: for development only)",
                )
            try:
                self._account = await asyncio.to_thread(
                    accounts.ensure_account,
                    self.account_name(),
                    tuple(self.account_uid_range) if self.account_uid_range else None,
                    self.create_accounts,
                )
            except accounts.AccountError as e:
                raise web.HTTPError(503, f"cannot start the session: {e}")
            try:
                await asyncio.to_thread(accounts.make_home, home, self._account)
            except accounts.AccountError as e:
                raise web.HTTPError(500, str(e))
        else:
            self.log.warning(
                "LocalSpaceSpawner.isolate is False: %s runs as the hub's account, "
                "unisolated (development only)", self._log_name,
            )
            os.makedirs(home, 0o700, exist_ok=True)
            if ctx.mounts:
                raise web.HTTPError(
                    503,
                    "this space has file assets, which only isolated sessions mount "
                    "read-only: set LocalSpaceSpawner.isolate = True (root and bubblewrap)",
                )
        ctx.workdir = home

    def make_preexec_fn(self, name):
        def preexec():
            # what the session makes in its home is its own account's only
            os.umask(0o077)
            os.chdir("/")

        return preexec

    def user_env(self, env):
        env["USER"] = self._account.name if self.isolate and self._account else self.user.name
        env["HOME"] = self.home_dir
        env["SHELL"] = "/bin/bash"
        return env

    def get_args(self):
        args = super().get_args()
        if (
            not self.isolate
            and os.geteuid() == 0
            and "--allow-root" not in args
            and self._cmd_override is None
        ):
            args.append("--allow-root")
        return args

    def sandbox(self) -> isolate.Sandbox:
        """The sandbox of the session being started (from the context and account)."""
        ctx, account = self._ctx, self._account
        binds = ctx.state.get("sandbox_binds", {})
        groups = tuple(g for g in (accounts.group_id(accounts.space_group_name(ctx.space_id)),) if g)
        return isolate.Sandbox(
            uid=account.uid,
            gid=account.gid,
            groups=groups,
            home=self.home_dir,
            system=isolate.host_system(),
            read_only=tuple(isolate.runtime_paths()) + tuple(binds.get("read_only", ())),
            read_write=tuple(binds.get("read_write", ())),
            binds=tuple((m.source, os.path.join(self.home_dir, m.target)) for m in ctx.mounts),
            hostname=ctx.server,
            bwrap=shutil.which("bwrap") or "bwrap",
            # sessions outlive a hub restart when the hub does not stop them
            die_with_parent=bool(self.config.get("JupyterHub", {}).get("cleanup_servers", True)),
        )

    def _launch_cmd(self) -> list[str]:
        command = list(self._cmd_override or self.cmd)
        if not self.isolate:
            return command
        return isolate.sandbox_argv(self.sandbox(), command)

    async def _signal(self, sig):
        """Signal the session itself, not bubblewrap (which passes no signal on), so
        JupyterLab stops gracefully on the hub's SIGINT / SIGTERM; bubblewrap exits
        with it. 0 (is it alive?) still asks bubblewrap, the process the hub started."""
        command = isolate.sandboxed_command(self.pid) if sig and self.isolate and self.pid else None
        if command is not None:
            try:
                os.kill(command, sig)
            except ProcessLookupError:
                pass
            return await super()._signal(0)
        return await super()._signal(sig)

    # LocalProcessSpawner.start reads self.cmd: point it at the wrapped command for the
    # duration of the start only
    async def _backend_start(self):
        saved = self.cmd
        self.cmd = self._launch_cmd()
        try:
            return await LocalProcessSpawner.start(self)
        finally:
            self.cmd = saved


try:
    from kubespawner import KubeSpawner
except ImportError:  # the 'kubernetes' extra is not installed
    KubeSpawner = None


if KubeSpawner is not None:
    from traitlets import Dict as _Dict
    from traitlets import List as _List

    from . import objects

    class KubeSpaceSpawner(SpaceSpawnerMixin, KubeSpawner):
        """Space sessions as Kubernetes pods.

        Each user gets a PVC per space as working storage (its home, kept across
        activations); each ``files`` asset is its own read-only volume (a subPath of
        :attr:`assets_volume`); the machine profile sets resources and scheduling; a
        Sandbox pod gets a NetworkPolicy that closes it off. ``delete_pvc`` never
        touches the assets volume or any claim in :attr:`protected_claims`.
        """

        backend = "kubernetes"

        assets_volume = _Dict(
            help="The volume source holding SpacesSettings.data_root in the cluster, "
            "mounted read-only once per files asset with the asset's location as "
            "subPath, e.g. {'persistentVolumeClaim': {'claimName': 'spaces-assets'}} "
            "or {'nfs': {'server': 'nfs.example.org', 'path': '/assets'}}.",
        ).tag(config=True)

        protected_claims = _List(
            help="PVC names a session may mount but that are never deleted with a "
            "space's server (shared data). The assets claim is always protected.",
        ).tag(config=True)

        home_mount_path = Unicode(
            "/home/jovyan",
            help="Where the session's working storage (its own claim per space) is "
            "mounted. A site volume mounted at the same path (Zero to JupyterHub's "
            "singleuser.storage) is left out of space sessions: a home shared between "
            "spaces would carry data out of a Sandbox.",
        ).tag(config=True)

        sandbox_image = Unicode(
            help="The image of Sandbox sessions (the desktop); ``image`` is the one of "
            "Workbench sessions. A Sandbox start is refused while it is empty.",
        ).tag(config=True)

        guacd_image = Unicode(
            help="The guacd image run as a sidecar of every Sandbox pod, on the pod's "
            "loopback (1.5.5 or later; default: objects.GUACD_IMAGE).",
        ).tag(config=True)

        guacd_resources = _Dict(
            help="Resource requests and limits of the guacd sidecar (Kubernetes form; "
            "empty: small requests and a 512Mi memory limit).",
        ).tag(config=True)

        @default("guacd_image")
        def _default_guacd_image(self):
            return objects.GUACD_IMAGE

        sandbox_network_policy = Bool(
            True,
            help="Give each Sandbox pod a NetworkPolicy: ingress from the proxy only, "
            "egress to the hub, the sandbox_egress peers and DNS only.",
        ).tag(config=True)

        sandbox_ingress_from = _List(
            help="NetworkPolicy peers allowed to reach a Sandbox pod (default: the "
            "Zero to JupyterHub proxy and hub pods).",
        ).tag(config=True)

        sandbox_egress_to = _List(
            help="NetworkPolicy peers a Sandbox pod may reach (default: the hub pod; "
            "add the space databases' server here).",
        ).tag(config=True)

        @default("sandbox_ingress_from")
        def _default_ingress(self):
            # the hub too: it checks the session's server is up before routing to it
            return [
                {"podSelector": {"matchLabels": {"component": "proxy"}}},
                {"podSelector": {"matchLabels": {"component": "hub"}}},
            ]

        @default("sandbox_egress_to")
        def _default_egress(self):
            return [{"podSelector": {"matchLabels": {"component": "hub"}}}]

        @default("pvc_name_template")
        def _default_pvc_name_template(self):
            return "space-{user_server}"

        @default("storage_pvc_ensure")
        def _default_storage_pvc_ensure(self):
            return True

        @default("storage_capacity")
        def _default_storage_capacity(self):
            return "10Gi"

        @default("default_url")
        def _default_default_url(self):
            return "/lab"

        _base: dict | None = None

        def _configured(self, name):
            """The site's configured value of a trait this spawner extends per start."""
            if self._base is None:
                self._base = {
                    key: getattr(self, key)
                    for key in ("volumes", "volume_mounts", "extra_labels", "cmd",
                                "extra_containers", "image")
                }
            return self._base[name]

        def _protected(self) -> set[str]:
            protected = set(self.protected_claims) | objects.claim_names([{**self.assets_volume, "name": "x"}])
            configured = self._configured("volumes")
            values = configured.values() if isinstance(configured, dict) else configured
            # every claim the site mounts for everyone is shared
            protected |= objects.claim_names(values)
            return protected

        async def load_user_options(self):
            """Nothing to load: the machine profile comes from the space in the store,
            never from user_options (KubeSpawner's profile_list is not used)."""

        def _apply_profile(self, ctx):
            for key, value in objects.make_profile_resources(ctx.profile).items():
                setattr(self, key, value)

        async def _prepare_backend(self, ctx):
            from .databases import SpaceDatabases

            if SpaceDatabases(parent=self).backend != "postgresql":
                # a pod cannot reach SQLite files of the hub's, and their grants are
                # advisory only
                raise web.HTTPError(
                    500,
                    "space sessions on Kubernetes need the PostgreSQL space databases: "
                    "set c.SpaceDatabases.backend = 'postgresql' and its admin_url "
                    "(the Helm chart's database.adminUrl)",
                )
            ctx.workdir = self.home_mount_path
            configured_image = self._configured("image")
            if ctx.sandbox:
                if not self.sandbox_image:
                    raise web.HTTPError(
                        503,
                        "this site has no Sandbox image: an admin must set "
                        "KubeSpaceSpawner.sandbox_image (the chart's sessions.sandbox.image)",
                    )
                self.image = self.sandbox_image
            else:
                self.image = configured_image
            if self.pvc_name in self._protected():
                raise web.HTTPError(
                    500,
                    f"the working storage claim {self.pvc_name!r} of this session is a "
                    "protected shared claim: fix KubeSpaceSpawner.pvc_name_template",
                )
            volumes, mounts = objects.without_mounts_at(
                _as_list(self._configured("volumes")),
                _as_list(self._configured("volume_mounts")),
                self.home_mount_path,
            )
            if self.storage_pvc_ensure:
                home, home_mount = objects.make_home_volume(self.pvc_name, self.home_mount_path)
                volumes.append(home)
                mounts.append(home_mount)
            if ctx.mounts:
                if not self.assets_volume:
                    raise web.HTTPError(
                        503,
                        "this space has file assets but KubeSpaceSpawner.assets_volume is "
                        "not set: an admin must configure the volume holding the data",
                    )
                asset_volumes, asset_mounts_ = objects.make_asset_volumes(
                    ctx.mounts, self.assets_volume, self.home_mount_path
                )
                volumes.extend(asset_volumes)
                mounts.extend(asset_mounts_)
            self.volumes, self.volume_mounts = volumes, mounts
            self.extra_labels = {
                **self._configured("extra_labels"),
                **objects.make_session_labels(ctx.server, ctx.space_id, ctx.mode.value),
            }
            configured_cmd = self._configured("cmd")
            if ctx.sandbox:
                self.cmd = _sandbox_pod_command(ctx)
            else:
                # None keeps the image's own command
                self.cmd = list(configured_cmd) if configured_cmd else configured_cmd
            containers = list(self._configured("extra_containers") or [])
            if ctx.sandbox:
                # the gateway reaches guacd on the pod's loopback (sandbox.gateway_command)
                containers.append(
                    objects.make_guacd_sidecar(self.guacd_image, resources=self.guacd_resources or None)
                )
            self.extra_containers = containers

        def network_policy(self, ctx) -> dict | None:
            """The NetworkPolicy of a Sandbox session's pod (None for a Workbench)."""
            if not (ctx.sandbox and self.sandbox_network_policy):
                return None
            labels = objects.make_session_labels(ctx.server, ctx.space_id, ctx.mode.value)
            labels["hub.jupyter.org/username"] = objects.label_value(self.user.name)
            return objects.make_network_policy(
                self.pod_name, self.namespace, labels,
                ingress_from=self.sandbox_ingress_from, egress_to=self.sandbox_egress_to,
                ingress_port=self.port,
            )

        async def _backend_start(self):
            policy_manifest = self.network_policy(self._ctx) if self._ctx else None
            if policy_manifest is not None:
                await self._apply_network_policy(policy_manifest)
            return await super()._backend_start()

        async def _apply_network_policy(self, manifest: dict) -> None:
            from kubernetes_asyncio.client.rest import ApiException
            from kubespawner.clients import shared_client

            api = shared_client("NetworkingV1Api")
            try:
                await api.create_namespaced_network_policy(self.namespace, manifest)
            except ApiException as e:
                if e.status != 409:
                    raise
                await api.replace_namespaced_network_policy(
                    manifest["metadata"]["name"], self.namespace, manifest
                )

        async def stop(self, now=False):
            await super().stop(now=now)
            if self.sandbox_network_policy:
                from kubernetes_asyncio.client.rest import ApiException
                from kubespawner.clients import shared_client

                try:
                    await shared_client("NetworkingV1Api").delete_namespaced_network_policy(
                        self.pod_name, self.namespace
                    )
                except ApiException as e:
                    if e.status != 404:
                        self.log.warning("could not delete NetworkPolicy %s: %s", self.pod_name, e)

        async def delete_forever(self):
            """Delete the space's working storage, never a protected shared claim."""
            if self.pvc_name in self._protected():
                self.log.warning(
                    "not deleting claim %s of %s: it is a protected shared claim",
                    self.pvc_name, self._log_name,
                )
                return
            await super().delete_forever()

    def _as_list(value) -> list:
        if isinstance(value, dict):
            return [value[k] for k in sorted(value)]
        return list(value or [])

    def _sandbox_pod_command(ctx) -> list[str]:
        """In a pod the Sandbox programs come with the image: only the command is needed."""
        try:
            from . import sandbox
        except ImportError:
            raise web.HTTPError(503, "this hub has no Sandbox support installed")
        cmd = list(sandbox.gateway_command(ctx))
        # gateway_command names the hub's own Python; the pod runs the image's, which
        # is first on the image's PATH
        if cmd and cmd[0] == sys.executable:
            cmd[0] = "python3"
        return cmd

else:

    class KubeSpaceSpawner:  # type: ignore[no-redef]
        """Placeholder: install jupyterhub-spaces[kubernetes] for KubeSpawner support."""

        def __init__(self, *args, **kwargs):
            raise ImportError(
                "KubeSpaceSpawner needs KubeSpawner: pip install 'jupyterhub-spaces[kubernetes]'"
            )
