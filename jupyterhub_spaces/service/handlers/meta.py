"""Who am I, and what is this service: the small endpoints the Spaces app and API
clients start with."""

from __future__ import annotations

from sqlalchemy import func, select

from ... import __version__, orm
from ..base import APIHandler, BaseHandler


class RootHandler(APIHandler):
    """``GET /api/v1/``: the API version and the caller's identity."""

    async def get(self):
        # any authenticated caller
        self.write_json(
            {
                "version": __version__,
                "api": "v1",
                "user": self.user_name,
                "kind": self.hub_user.get("kind", "user"),
                "admin": self.is_admin,
            }
        )


class MeHandler(APIHandler):
    """``GET /api/v1/me``: the caller as the catalog knows them."""

    async def get(self):
        # users only: services have no catalog row
        user = self.current_db_user()
        owned = self.db.scalar(select(func.count()).where(orm.Space.owner_id == user.id))
        self.write_json(
            {
                "name": user.name,
                "display_name": user.display_name,
                "org": user.org.name if user.org else None,
                "admin": self.is_admin,
                "spaces_owned": owned,
                "space_limit": self.spaces_settings.space_limit,
            }
        )


class LoginHandler(BaseHandler):
    """``GET /login?next=<path>``: start the hub's OAuth flow for a browser (or go
    straight to ``next`` when already logged in). ``next`` must stay inside the
    service, so the flow cannot be turned into an open redirect."""

    auth_required = False

    async def get(self):
        prefix = self.service.service_prefix
        target = self.get_argument("next", prefix)
        if not target.startswith(prefix) or target.startswith("//") or "\\" in target:
            target = prefix
        if self.hub_user:
            self.redirect(target)
            return
        # the OAuth state remembers where to go once the hub has logged the user in
        self.request.uri = target
        self.redirect(self.get_login_url())


default_handlers = [
    (r"login", LoginHandler),
    (r"api/v1/?", RootHandler),
    (r"api/v1/me", MeHandler),
]
