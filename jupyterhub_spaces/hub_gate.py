"""The hub's gate for named servers: a server exists only as a space its user may start.

JupyterHub asks ``JupyterHub.named_server_limit_per_user`` (when it is a callable, with
the request's handler) before it creates or starts a named server, on
``PUT``/``POST /hub/api/users/{user}/servers/{name}`` and on the hub's spawn page, and
before it writes any record. :func:`space_server_gate` is that callable:

- the name must be a space's server name (``space-<id>``, :func:`policy.server_name`;
  a slug is not one) of a space the user is a member of and may start now (the spawner's
  own rules, :func:`jupyterhub_spaces.admission.admit`): otherwise the request is
  refused with the reason (:func:`jupyterhub_spaces.policy.start.start_refusal`: 404
  for a space that does not exist or that the user is not a member of, alike; 403
  locked, naming what is missing; 409 unknown machine profile), and no server record
  is left behind;
- no other server of the user may be active, starting or stopping (409 naming it).
  JupyterHub marks the new server as starting in the same turn of its event loop as
  this check, so of concurrent starts exactly one passes and the others get the 409.

Both refusals come before the hub answers, whatever ``slow_spawn_timeout`` is, so a
client never mistakes a refusal for a start (202). The spawner checks everything again
in ``start()``; the gate only makes the answer truthful and keeps records out.

It returns 0 (no count limit): servers exist only for spaces anyway.
"""

from __future__ import annotations

from tornado import web

from . import policy
from .settings import SpacesSettings
from .admission import StartRefused, admit, refusal_audit
from .spawner import active_elsewhere
from .store import shared

_settings: dict[int, SpacesSettings] = {}


def _spaces_settings(handler) -> SpacesSettings:
    config = handler.settings.get("config")
    key = id(config)
    if key not in _settings:
        _settings[key] = SpacesSettings(config=config) if config is not None else SpacesSettings()
    return _settings[key]


def _spaces_app_url(handler, settings: SpacesSettings) -> str:
    base = handler.settings.get("base_url", "/")
    return f"{base.rstrip('/')}/services/{settings.service_name}/"


def space_server_gate(handler) -> int:
    """``c.JupyterHub.named_server_limit_per_user = space_server_gate``: refuse (raise
    ``HTTPError``) a named server that is not a space the user may start now."""
    args = handler.path_args or ()
    if handler.request.method not in ("GET", "POST", "PUT") or len(args) < 2 or not args[1]:
        # the home page asks for the limit to show it; PATCH renames are refused by
        # the spawner's rename()
        return 0
    user = handler.find_user(args[0])
    if user is None:
        return 0  # the hub answers 404 itself
    name = args[1]
    if not policy.is_safe_slug(name):
        return 0  # the hub refuses names that are no safe slug itself (400)
    spawner = user.spawners.get(name)
    if spawner is not None and spawner.active:
        return 0  # already starting or running: the hub says so itself
    settings = _spaces_settings(handler)
    store = shared(settings.db_url)
    try:
        with store.transaction() as db:
            admit(db, user.name, name, settings, _spaces_app_url(handler, settings))
        other = active_elsewhere(user, name, starting=True)
        if other is not None:
            raise StartRefused(409, policy.one_active_conflict(name, [other]) or f"space {other!r} is active",
                               active=other)
    except StartRefused as refused:
        refusal_audit(store, user.name, name, refused, via="hub")
        raise web.HTTPError(refused.status, "%s", refused.message)
    return 0
