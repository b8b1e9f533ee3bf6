"""Login for jupyterhub-spaces.

Two authenticators, both registered as ``jupyterhub.authenticators`` entry points:

- :class:`SpacesOAuthenticator` (``spaces-oauth``): production login through any
  OpenID Connect provider. It reads the user's organization and admin role from the
  provider's claims and records the user and organization in the spaces catalog at
  every login, so the catalog always knows who belongs where.
- :class:`DemoAuthenticator` (``spaces-demo``): the embedded default only. The demo
  users share one random password, made at first start, kept in a file of the hub's
  data directory and printed when the hub starts. It also loads the demo catalog on
  first start.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import secrets
import sys
from functools import reduce

from jupyterhub.auth import Authenticator
from oauthenticator.generic import GenericOAuthenticator
from sqlalchemy import select
from tornado import web
from traitlets import Bool, Set, Unicode, default

from . import demo, orm
from .settings import SpacesSettings
from .store import Store, shared

#: the longest organization name the catalog stores
MAX_ORG_NAME = 100


def claim_value(claims: dict, path: str):
    """The claim at ``path`` in ``claims``; dots name nested keys ("realm.org")."""
    return reduce(
        lambda d, key: d.get(key) if isinstance(d, dict) else None, path.split("."), claims
    )


def record_login(store: Store, user_name: str, org_name: str, display_name: str = "") -> bool:
    """Create or update ``user_name`` in ``org_name`` (creating the organization when
    new). Returns whether anything changed; a change is written to the audit log."""
    with store.transaction() as db:
        org = db.scalar(select(orm.Organization).where(orm.Organization.name == org_name))
        if org is None:
            org = orm.Organization(name=org_name, display_name=org_name)
            db.add(org)
            db.flush()
            detail = {"organization_created": org_name}
        else:
            detail = {}
        user = db.scalar(select(orm.User).where(orm.User.name == user_name))
        if user is None:
            db.add(orm.User(name=user_name, org_id=org.id, display_name=display_name))
            db.flush()
            action = "user.create"
        elif user.org_id != org.id:
            previous = user.org.name if user.org else None
            user.org_id = org.id
            detail["previous_organization"] = previous
            action = "user.move"
        else:
            if display_name and user.display_name != display_name:
                user.display_name = display_name
            return False
        if display_name:
            detail["display_name"] = display_name
        db.add(
            orm.AuditEvent(
                actor=user_name,
                action=action,
                target_type="user",
                target_id=user_name,
                detail={"organization": org_name, **detail},
            )
        )
        return True


class _CatalogMixin:
    """Lazily opens the one spaces store, with the hub's ``c.SpacesSettings``."""

    _store: Store | None = None

    @property
    def spaces_settings(self) -> SpacesSettings:
        if getattr(self, "_spaces_settings", None) is None:
            self._spaces_settings = SpacesSettings(parent=self)
        return self._spaces_settings

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = shared(self.spaces_settings.db_url)
        return self._store


class SpacesOAuthenticator(_CatalogMixin, GenericOAuthenticator):
    """OpenID Connect login that maps claims onto the spaces catalog.

    The organization claim (:attr:`org_claim`) is required: a user whose claims carry
    none is refused, since every rule of the catalog (visibility, ownership) needs it.
    Users whose :attr:`admin_claim` holds one of :attr:`admin_claim_values` get the
    JupyterHub role :attr:`admin_role` with the spaces admin scope; others lose it at
    their next login.
    """

    org_claim = Unicode(
        "org",
        help="Claim (from the provider's userinfo) naming the user's organization. "
        "Use dots for nested claims, e.g. 'tenant.name'.",
    ).tag(config=True)

    allowed_organizations = Set(
        Unicode(),
        help="When not empty, only users of these organizations may log in "
        "(in addition to the usual allow rules).",
    ).tag(config=True)

    admin_claim = Unicode(
        "groups",
        help="Claim holding the user's groups or roles (a list or a single string) "
        "that decides whether they are a spaces admin.",
    ).tag(config=True)

    admin_claim_values = Set(
        Unicode(),
        default_value={"spaces-admin"},
        help="Values of admin_claim that make a user a spaces admin.",
    ).tag(config=True)

    admin_role = Unicode(
        "spaces-admin",
        help="Name of the JupyterHub role given to spaces admins; it grants the spaces "
        "admin scope (SpacesSettings.admin_scope).",
    ).tag(config=True)

    display_name_claim = Unicode(
        "name", help="Claim with the user's human name, kept in the catalog."
    ).tag(config=True)

    @default("manage_roles")
    def _manage_roles_default(self):
        # the provider decides who is a spaces admin: roles follow the claims
        return True

    def admin_role_spec(self) -> dict:
        return {
            "name": self.admin_role,
            "description": "Spaces admins: grant subscriptions, read the audit log.",
            "scopes": [self.spaces_settings.admin_scope],
        }

    async def load_managed_roles(self):
        # defined at startup so the role exists before the first admin logs in
        return [self.admin_role_spec()]

    def organization_of(self, claims: dict) -> str:
        """The organization named by the claims, or a 403 the user can act on."""
        value = claim_value(claims, self.org_claim)
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, str) or not value.strip():
            raise web.HTTPError(
                403,
                f"Your account has no organization (the sign-in provider sent no "
                f"'{self.org_claim}' claim), so Spaces cannot tell which data you may use. "
                "Ask your identity administrator to assign you to an organization, then "
                "sign in again.",
            )
        value = value.strip()
        if len(value) > MAX_ORG_NAME:
            raise web.HTTPError(
                403,
                f"Your organization name is longer than {MAX_ORG_NAME} characters; "
                "ask your identity administrator to shorten it.",
            )
        if self.allowed_organizations and value not in self.allowed_organizations:
            raise web.HTTPError(
                403,
                f"Organization '{value}' is not allowed on this hub. Ask the hub "
                "administrator to add it.",
            )
        return value

    def is_spaces_admin(self, claims: dict) -> bool:
        value = claim_value(claims, self.admin_claim)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            return False
        return bool(set(map(str, value)) & self.admin_claim_values)

    async def update_auth_model(self, auth_model):
        auth_model = await super().update_auth_model(auth_model)
        claims = auth_model["auth_state"][self.user_auth_state_key] or {}
        org = self.organization_of(claims)
        display_name = claim_value(claims, self.display_name_claim)
        display_name = display_name if isinstance(display_name, str) else ""
        # the store is synchronous: keep it off the hub's event loop
        await asyncio.to_thread(
            record_login, self.store, auth_model["name"], org, display_name[:255]
        )
        if self.manage_roles:
            # the full list: JupyterHub strips any role not named here
            roles = [{"name": "user"}]
            if auth_model.get("admin"):
                roles.append({"name": "admin"})
            if self.is_spaces_admin(claims):
                roles.append(self.admin_role_spec())
            auth_model["roles"] = roles
        return auth_model


class DemoAuthenticator(_CatalogMixin, Authenticator):
    """Local accounts of the embedded demo: the demo users, one shared password.

    Not for production: the password is written to :attr:`password_file` in clear
    so the person who started the hub can read it again.
    """

    password_file = Unicode(
        help="File holding the demo password, made at first start (mode 0600). "
        "Default: demo-password in the hub's working directory."
    ).tag(config=True)

    demo_users = Set(
        Unicode(),
        help="Users who may log in with the demo password (default: the demo catalog's users).",
    ).tag(config=True)

    seed_demo_catalog = Bool(
        True,
        help="Load the demo catalog into the spaces database on first start.",
    ).tag(config=True)

    @default("password_file")
    def _password_file_default(self):
        return os.path.abspath("demo-password")

    @default("demo_users")
    def _demo_users_default(self):
        return set(demo.USERS)

    @default("allowed_users")
    def _allowed_users_default(self):
        return set(self.demo_users)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.password = self.load_password()
        if self.seed_demo_catalog and demo.seed_once(self.store, self.spaces_settings):
            self.log.info("Loaded the demo catalog into %s", self.spaces_settings.db_url)
        self.announce()

    def load_password(self) -> str:
        """The demo password: read from :attr:`password_file`, made there when absent."""
        path = self.password_file
        try:
            with open(path) as f:
                password = f.read().strip()
            if password:
                return password
        except FileNotFoundError:
            pass
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        password = secrets.token_urlsafe(12)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        os.replace(tmp, path)
        return password

    def announce(self) -> None:
        users = ", ".join(sorted(self.demo_users))
        lines = [
            "Demo login: any of these users with the demo password",
            f"  users:    {users}",
            f"  password: {self.password}",
            f"  (kept in {self.password_file})",
        ]
        for line in lines:
            self.log.warning(line)
        width = max(map(len, lines)) + 2
        bar = "=" * width
        print("\n".join(["", bar, *(f" {line}" for line in lines), bar, ""]), file=sys.stderr, flush=True)

    async def authenticate(self, handler, data):
        name = self.normalize_username((data or {}).get("username", ""))
        password = (data or {}).get("password", "")
        if name not in self.demo_users:
            self.log.warning("Demo login refused for unknown user %r", name[:32])
            return None
        # compare in constant time: the password is the only secret here
        if not hmac.compare_digest(password.encode(), self.password.encode()):
            self.log.warning("Demo login refused for %s: wrong password", name)
            return None
        return {"name": name}
