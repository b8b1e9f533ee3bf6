"""The base of every handler of the spaces service.

:class:`APIHandler` gives each JSON endpoint the same ground:

- **who is calling**: a browser user through the HubOAuth cookie set at the end of the
  hub's OAuth flow, or an API client with a JupyterHub token in the ``Authorization``
  header. Both are checked with the hub; a caller needs the service's access scope
  (``access:services!service=spaces``) to get in at all.
- **admin**: ``self.is_admin`` is true when the caller's token carries
  ``SpacesSettings.admin_scope`` (``custom:spaces:admin`` by default). For browser
  users this works because the service's OAuth client lists that scope in
  ``oauth_client_allowed_scopes``: the hub puts it into the token only for users who
  hold it. Everything else is decided by space membership and roles.
- **one transaction per request**: ``self.db`` is a session inside one
  ``store.transaction()``; it commits just before a successful response is sent and
  rolls back on any error, so a refused request changes nothing.
- **errors as JSON**: every error, including tornado's own 404/405/500 and failed
  authentication, is ``{"status", "error", "message", "fields"?}``.
- **refusals are audited**: ``raise APIError(..., audit={...})`` records the refusal
  in the audit log in its own small transaction after the request's changes were
  rolled back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from http.client import responses
from typing import Any
from urllib.parse import urlencode

from jupyterhub.services.auth import HubOAuthenticated, UserNotAllowed, check_scopes
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tornado import web

from .. import orm, policy, store as store_mod
from ..databases import DatabaseBackend
from ..hubapi import HubAPI
from ..policy.roles import role_refusal
from ..settings import SpacesSettings
from .inputs import (  # noqa: F401  (Field and check_fields are the handlers' API)
    MAX_INT,
    Field,
    InputError,
    check_fields,
    parse_id,
    parse_int,
    parse_json_object,
    quote,
    text_problem,
)

log = logging.getLogger("jupyterhub_spaces.service")


class APIError(web.HTTPError):
    """An error the caller can act on.

    ``message`` says what was wrong and what to do; ``fields`` maps request fields to
    their own messages (for 422s). ``audit`` (a dict with at least ``action``, and
    optionally ``target_type``, ``target_id`` and detail keys) records the refusal in
    the audit log after the request's own changes were rolled back.
    """

    def __init__(
        self,
        status: int,
        message: str,
        fields: Mapping[str, str] | None = None,
        audit: Mapping[str, Any] | None = None,
    ):
        super().__init__(status, "%s", message)
        self.message = message
        self.fields = dict(fields) if fields else None
        self.audit = dict(audit) if audit else None


class _Rollback(Exception):
    """Thrown into the request's transaction to roll it back."""


def error_body(status: int, message: str, fields: Mapping[str, str] | None = None) -> dict:
    body = {"status": status, "error": responses.get(status, "Error"), "message": message}
    if fields:
        body["fields"] = dict(fields)
    return body


def not_found(what: str, raw_id: object, among: str = "") -> "APIError":
    """The one answer for a thing that does not exist *or* that the caller may not
    see: the same status and message either way, so ids reveal nothing."""
    shown = raw_id if isinstance(raw_id, int) else quote(str(raw_id))
    return APIError(404, f"no {what} with id {shown}{among}")


def no_space(raw_id: object) -> "APIError":
    """404 for a space that does not exist or of which the caller is not a member."""
    return not_found("space", raw_id, " among your spaces")


# ---------------------------------------------------------------------------


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    """Authentication, settings and the request transaction, shared by JSON and page
    handlers. Page handlers (the Spaces web app) subclass this directly."""

    #: set False on handlers anyone may reach (e.g. the OpenAPI document)
    auth_required = True

    @property
    def hub_auth(self):
        return self.settings["hub_auth"]

    @hub_auth.setter
    def hub_auth(self, value):  # the mixin's setter; ours is fixed by the application
        raise AttributeError("hub_auth is set by the application")

    @property
    def store(self) -> store_mod.Store:
        return self.settings["store"]

    @property
    def spaces_settings(self) -> SpacesSettings:
        return self.settings["spaces_settings"]

    @property
    def hub(self) -> HubAPI:
        """The hub's REST API, called with the service's own token."""
        return self.settings["spaces_hubapi"]

    @property
    def guard(self):
        """The :class:`~jupyterhub_spaces.service.guard.SessionGuard`: run it after a
        change that can take a running session out of the rules."""
        return self.settings["session_guard"]

    @property
    def databases(self) -> DatabaseBackend:
        return self.settings["databases"]

    @property
    def service(self):
        """The :class:`~jupyterhub_spaces.service.app.SpacesService` application."""
        return self.settings["service"]

    @property
    def log(self):
        return log

    # -- identity ---------------------------------------------------------

    hub_user: dict | None = None
    _tx: AbstractContextManager | None = None
    _db: Session | None = None

    def get_current_user(self):
        # prepare() identified the caller asynchronously; never block here
        return self.hub_user

    async def identify(self) -> dict | None:
        """Ask the hub who is calling (token first, then the OAuth cookie)."""
        model = await self.hub_auth.get_user(self, sync=False)
        if not model:
            return None
        try:
            return self.check_hub_user(model)
        except UserNotAllowed:
            raise APIError(
                403,
                f"{model.get('kind', 'user')} {model.get('name')} may not use the "
                f"{self.spaces_settings.service_name} service: an admin must grant the "
                f"scope access:services!service={self.spaces_settings.service_name}",
            )

    async def prepare(self):
        if self.auth_required:
            self.hub_user = await self.identify()
            if self.hub_user is None:
                self.not_authenticated()
        elif self.request.headers.get("Authorization") or self.hub_auth.cookie_name in self.request.cookies:
            try:
                self.hub_user = await self.identify()
            except APIError:
                self.hub_user = None

    def not_authenticated(self):
        raise APIError(
            401,
            "not logged in: log in to JupyterHub in this browser (cookie-authenticated "
            "requests other than GET also need the X-XSRFToken header), or send a "
            "JupyterHub API token as 'Authorization: token <token>'",
        )

    @property
    def user_name(self) -> str:
        """The caller's JupyterHub name (a service's name for a service token)."""
        return self.hub_user["name"] if self.hub_user else ""

    @property
    def is_service(self) -> bool:
        return bool(self.hub_user) and self.hub_user.get("kind") == "service"

    @property
    def is_admin(self) -> bool:
        """Whether the caller's token carries the spaces admin scope."""
        if not self.hub_user:
            return False
        return bool(check_scopes(self.spaces_settings.admin_scope, set(self.hub_user.get("scopes", []))))

    def require_admin(self, action: str, what: str, **audit_detail) -> None:
        """Refuse (403, audited as ``action``) unless the caller is a spaces admin;
        ``what`` says what was refused, e.g. "grant subscriptions"."""
        if not self.is_admin:
            raise APIError(
                403,
                f"only spaces admins may {what}: this needs the "
                f"{self.spaces_settings.admin_scope} scope; ask a JupyterHub admin",
                audit={"action": action, **audit_detail},
            )

    # -- the request transaction ------------------------------------------

    @property
    def db(self) -> Session:
        """The session of this request's one transaction (opened on first use)."""
        if self._db is None:
            self._tx = self.store.transaction()
            self._db = self._tx.__enter__()
        return self._db

    def _end_transaction(self, commit: bool) -> None:
        tx, self._tx, self._db = self._tx, None, None
        if tx is None:
            return
        if commit:
            tx.__exit__(None, None, None)
        else:
            err = _Rollback()
            tx.__exit__(_Rollback, err, None)

    def commit(self) -> None:
        """Commit this request's transaction now, for work that must follow a durable
        change but come before the response (a later use of ``db`` opens a new one)."""
        self._end_transaction(commit=True)

    def finish(self, chunk=None):
        # commit before the response leaves: a failed commit becomes a 500 instead of
        # a success the database never saw
        if self._tx is not None:
            self._end_transaction(commit=self.get_status() < 400)
        return super().finish(chunk)

    def on_finish(self):
        if self._tx is not None:  # a connection closed early: never leave it open
            self._end_transaction(commit=False)

    def current_db_user(self) -> orm.User:
        """The caller's row in the catalog, created (with no organization) the first
        time a hub user calls the service. Services have none."""
        if self.is_service or not self.hub_user:
            raise APIError(
                403,
                f"service {self.user_name} has no spaces of its own: call this endpoint "
                "with a user's token",
            )
        if getattr(self, "_db_user", None) is not None:
            return self._db_user
        user = store_mod.user_by_name(self.db, self.user_name)
        if user is None:
            user = orm.User(name=self.user_name)
            self.db.add(user)
            self.db.flush()
        self._db_user = user
        return user

    def space_for(self, raw_id: str, action: str, lock: bool = False) -> tuple[orm.Space, policy.Role]:
        """The space with id ``raw_id`` (an ORM row, for changes) and the caller's role
        in it, if the caller is a member whose role allows ``action`` (see
        :mod:`jupyterhub_spaces.policy.roles`).

        A space the caller is not a member of is a 404, exactly like one that does not
        exist, so ids do not reveal other people's spaces. A member whose role does not
        allow ``action`` gets a 403 naming the roles that do (and it is audited).
        ``lock`` takes a row lock (PostgreSQL) so concurrent writes to one space queue.
        """
        space_id = self.id_argument(raw_id, "space")
        user = self.current_db_user()
        query = store_mod.space_query().where(orm.Space.id == space_id)
        if lock:
            query = query.with_for_update(of=orm.Space)
        space = self.db.scalar(query)
        return space, self._member_role(space_id, space, user.id, action)

    def space_view_for(self, raw_id: str, action: str):
        """Like :meth:`space_for`, read-only: a light view of the space
        (:func:`jupyterhub_spaces.service.queries.space_views`), for GETs."""
        from .queries import space_views

        space_id = self.id_argument(raw_id, "space")
        user = self.current_db_user()
        space = space_views(self.db, [space_id]).get(space_id)
        return space, self._member_role(space_id, space, user.id, action)

    def _member_role(self, space_id: int, space, user_id: int, action: str) -> policy.Role:
        role = None
        if space is not None:
            role = next((policy.Role(c.role) for c in space.collaborators if c.user_id == user_id), None)
        if space is None or role is None:
            raise no_space(space_id)
        refused = role_refusal(role, action, space.slug)
        if refused:
            raise APIError(
                403,
                refused,
                audit={"action": f"space.{action}", "target_type": "space", "target_id": space.id,
                       "role": role.value},
            )
        return role

    def audit(self, action: str, target_type: str = "", target_id: object = "", outcome: str = "ok", **detail):
        """Record a governance change in this request's transaction."""
        return store_mod.audit(
            self.db, self.user_name or "(anonymous)", action, target_type, target_id, outcome, **detail
        )

    def _audit_refusal(self, status: int, message: str, info: Mapping[str, Any]) -> None:
        info = dict(info)
        action = info.pop("action")
        metrics = self.settings.get("metrics")
        if metrics is not None:
            metrics.refusals.labels(action, str(status)).inc()
        target_type = info.pop("target_type", "")
        target_id = info.pop("target_id", "")
        try:
            with self.store.transaction() as db:
                store_mod.audit(
                    db,
                    self.user_name or "(anonymous)",
                    action,
                    target_type,
                    target_id,
                    outcome="refused",
                    status=status,
                    message=message,
                    **info,
                )
        except Exception:
            log.exception("could not record refusal of %s in the audit log", action)


class APIHandler(BaseHandler):
    """Base of the JSON API handlers (``/services/spaces/api/v1/...``)."""

    def set_default_headers(self):
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")

    def check_xsrf_cookie(self):
        # HubOAuth checks XSRF itself while reading the cookie: a cookie-authenticated
        # write without the token is simply not authenticated (see not_authenticated)
        return self.hub_auth.check_xsrf_cookie(self)

    async def prepare(self):
        await super().prepare()
        if self.hub_user and not getattr(self, "_token_authenticated", False):
            # give cookie-authenticated callers the _xsrf cookie their writes must echo
            # back in X-XSRFToken (set only for plain navigations, never for fetches)
            self.xsrf_token

    async def in_thread(self, read: Callable[[], Any]) -> Any:
        """Run ``read`` (the database work of a GET) in the service's database threads
        and return its result; the request's transaction ends there too.

        The catalog's drivers block: while one request waits on the database the event
        loop could serve others, so the hot read paths (my spaces, a space, its access)
        run here. Only this request touches its session meanwhile, so handing it to a
        worker thread and back is safe; results are written on the loop.
        """

        def work():
            ok = False
            try:
                result = read()
                ok = True
                return result
            finally:
                if self._tx is not None:
                    self._end_transaction(commit=ok)

        return await asyncio.get_running_loop().run_in_executor(self.service.db_executor, work)

    # -- JSON in and out --------------------------------------------------

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data, default=_json_default))

    def get_json_body(self) -> dict:
        """The request body as a JSON object: 400 when it is missing, not JSON, not an
        object, nested too deep or not valid Unicode; 413 when too large."""
        try:
            return parse_json_object(self.request.body)
        except InputError as e:
            raise APIError(e.status, e.message, e.fields)

    def body_fields(self, fields: Mapping[str, Field], body: dict | None = None) -> dict[str, Any]:
        """Check the body (parsed here unless given) against ``fields`` (400 / 422)."""
        try:
            return check_fields(self.get_json_body() if body is None else body, fields)
        except InputError as e:
            raise APIError(e.status, e.message, e.fields)

    # -- query arguments --------------------------------------------------

    def int_argument(self, name: str, default: int, lo: int = 0, hi: int = MAX_INT) -> int:
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            return default
        value = parse_int(raw, lo, hi)
        if value is None:
            bounds = f"from {lo} to {hi}"
            raise APIError(422, f"query argument {name}={quote(raw)} must be a whole number {bounds}",
                           {name: f"a whole number {bounds}"})
        return value

    def text_argument(self, name: str) -> str | None:
        """A text query argument (stripped), or None when absent; 422 when it is not
        plain text (see :func:`~jupyterhub_spaces.service.inputs.text_problem`)."""
        values = self.request.query_arguments.get(name)
        if not values:
            return None
        try:
            raw = values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise APIError(400, f"query argument {name} is not UTF-8 text")
        # tornado's get_argument would quietly turn control characters into spaces;
        # blank is the same as empty (no filter)
        raw = raw.strip()
        problem = text_problem(raw, allow_empty=True)
        if problem:
            raise APIError(422, f"query argument {name} {problem}", {name: problem})
        return raw

    def id_argument(self, raw: str, what: str) -> int:
        """A numeric id from the URL path: 404 when it is not one (no such thing)."""
        value = parse_id(raw)
        if value is None:
            raise APIError(404, f"no {what} with id {quote(raw)}: ids are whole numbers from 1 to {MAX_INT}")
        return value

    def page_of(self, query, scalars: bool = True) -> dict:
        """One page of ``query`` as ``{rows, total, offset, limit, next}``.

        ``?offset=`` and ``?limit=`` pick the page; ``limit`` is capped by the service's
        ``max_page_size``. ``next`` is the URL of the next page, or null on the last.
        ``query`` must be ordered so pages are stable.
        """
        max_size = self.service.max_page_size
        offset = self.int_argument("offset", 0)
        limit = self.int_argument("limit", min(self.service.default_page_size, max_size), 1, max_size)
        total = self.db.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        page = query.offset(offset).limit(limit)
        rows = list(self.db.scalars(page) if scalars else self.db.execute(page))
        return {"rows": rows, "total": total, "offset": offset, "limit": limit,
                "next": self.next_page_url(offset, limit, total)}

    def next_page_url(self, offset: int, limit: int, total: int) -> str | None:
        """The URL of the page after ``offset``/``limit``, or None on the last."""
        if offset + limit >= total:
            return None
        args = {k: self.get_argument(k) for k in self.request.arguments}
        args.update(offset=offset + limit, limit=limit)
        return f"{self.request.path}?{urlencode(args)}"

    def paginate(self, query, to_json: Callable[[Any], Any], scalars: bool = True) -> None:
        """Write one page of ``query`` as ``{items, total, offset, limit, next}``
        (see :meth:`page_of`)."""
        page = self.page_of(query, scalars)
        page["items"] = [to_json(r) for r in page.pop("rows")]
        self.write_json(page)

    # -- errors -----------------------------------------------------------

    def write_error(self, status_code: int, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self._end_transaction(commit=False)
        fields = None
        if isinstance(exc, APIError):
            message, fields = exc.message, exc.fields
            if exc.audit:
                self._audit_refusal(status_code, message, exc.audit)
        elif isinstance(exc, web.HTTPError):
            message = _http_error_message(exc, self.request)
        else:
            message = "internal error in the spaces service: the service log has the details"
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(error_body(status_code, message, fields)))


def _http_error_message(exc: web.HTTPError, request) -> str:
    if exc.status_code == 405:
        return f"{request.method} is not allowed on {request.path}"
    if exc.status_code == 404 and not exc.log_message:
        return f"no such endpoint: {request.path}"
    if exc.log_message:
        return exc.log_message % exc.args if exc.args else exc.log_message
    return exc.reason or responses.get(exc.status_code, "error")


def _json_default(value):
    from datetime import datetime
    from enum import Enum

    if isinstance(value, datetime):
        return value.isoformat() + "Z" if value.tzinfo is None else value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


class NotFoundHandler(APIHandler):
    """Every unknown URL under the service: a JSON 404, whoever asks."""

    auth_required = False

    def prepare(self):
        raise web.HTTPError(404)
