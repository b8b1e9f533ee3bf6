"""Subscriptions: a user requests one; a spaces admin grants, revokes, changes the
level or sets the expiry.

Permissions, per method:

- list, read: the caller's own subscriptions; admins (``SpacesSettings.admin_scope``)
  anyone's (``?user=``, ``?status=``);
- create: any user requests for themselves (status ``requested``); an admin may name
  ``user`` (and ``expires_at``) to grant directly (status ``active``). A non-admin
  naming another user or an expiry gets 403;
- update (grant, revoke, level, expiry): admins only (403 otherwise);
- delete: the requester withdraws a request that is still ``requested``.

Every grant, revocation, change and refusal is written to the audit log.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ... import orm, policy
from ...utils import utcnow
from ..base import APIError, APIHandler, Field
from ..models import subscription_model

LEVELS = ("full", "spaces")
STATUSES = ("requested", "active", "revoked")
MIN_YEAR, MAX_YEAR = 1970, 9999


def _level(value: str) -> str | None:
    return None if value in LEVELS else f"one of {', '.join(LEVELS)}"


def parse_time(value: str) -> datetime | None:
    """An ISO 8601 time as naive UTC (as stored); None when it does not parse."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        return None
    return parsed


def _time(value: str) -> str | None:
    if parse_time(value) is None:
        return f"an ISO 8601 date and time from year {MIN_YEAR} to {MAX_YEAR}, e.g. 2030-01-31T00:00:00Z"
    return None


TIME = Field(str, check=_time, nullable=True, describe="an ISO 8601 time or null")


def _query():
    return select(orm.Subscription).options(
        selectinload(orm.Subscription.user),
        selectinload(orm.Subscription.product),
        selectinload(orm.Subscription.asset),
    )


class SubscriptionsHandler(APIHandler):
    """``/api/v1/subscriptions``"""

    async def get(self):
        # own subscriptions; admins anyone's
        me = self.current_db_user() if not self.is_service else None
        query = _query().order_by(orm.Subscription.id)
        who = self.text_argument("user")
        if who is not None and (me is None or who != me.name):
            self.require_admin("subscription.list", "list other users' subscriptions", user=who)
        if who == "*":
            pass  # admins: everyone
        elif who is not None:
            query = query.join(orm.User, orm.Subscription.user_id == orm.User.id).where(orm.User.name == who)
        else:
            if me is None:
                raise APIError(422, "name a user with ?user=<name>, or ?user=* for everyone",
                               {"user": "required for services"})
            query = query.where(orm.Subscription.user_id == me.id)
        status = self.text_argument("status")
        if status is not None:
            if status not in STATUSES:
                raise APIError(422, f"status must be one of {', '.join(STATUSES)}",
                               {"status": f"one of {', '.join(STATUSES)}"})
            query = query.where(orm.Subscription.status == status)
        self.paginate(query, subscription_model)

    async def post(self):
        # any user requests for themselves; admins may grant to anyone. The permission
        # comes first: a non-admin naming a user or an expiry is refused whatever the values
        body = self.get_json_body()
        if ("user" in body or "expires_at" in body) and not self.is_admin:
            self.require_admin("subscription.grant", "grant subscriptions or set their expiry")
        values = self.body_fields(body=body, fields={
            "product_id": Field(int, minimum=1),
            "asset_id": Field(int, minimum=1),
            "level": Field(str, required=True, check=_level, describe=f"one of {', '.join(LEVELS)}"),
            "user": Field(str),
            "expires_at": TIME,
        })
        if ("product_id" in values) == ("asset_id" in values):
            msg = "name exactly one of product_id and asset_id"
            raise APIError(422, msg, {"product_id": msg, "asset_id": msg})
        target = self._target(values)
        grant = "user" in values or "expires_at" in values
        audit = {"action": "subscription.grant" if grant else "subscription.request",
                 "target_type": target[0], "target_id": target[1].id, "level": values["level"]}
        if grant:
            self.require_admin("subscription.grant", "grant subscriptions or set their expiry", **{k: v for k, v in audit.items() if k != "action"},
                               user=values.get("user", self.user_name))
        user = self._user(values.get("user")) if "user" in values else self.current_db_user()
        key = {"product_id": target[1].id} if target[0] == "product" else {"asset_id": target[1].id}
        sub = self.db.scalar(
            select(orm.Subscription).where(orm.Subscription.user_id == user.id).filter_by(**key).with_for_update()
        )
        now = utcnow()
        if grant:
            created = sub is None
            if created:
                sub = orm.Subscription(user_id=user.id, **key)
                self.db.add(sub)
            sub.level = values["level"]
            sub.status = "active"
            sub.expires_at = parse_time(values["expires_at"]) if values.get("expires_at") else None
            sub.granted_by = self.user_name
            sub.updated_at = now
            self.db.flush()
            self.audit("subscription.grant", target[0], target[1].id, user=user.name,
                       level=sub.level, expires_at=values.get("expires_at"), subscription=sub.id)
        else:
            if sub is not None and sub.status == "requested":
                raise APIError(409, f"you already requested {target[0]} '{target[1].name}': an admin will "
                               "grant or refuse it", audit=audit)
            if sub is not None and policy.subscription_active(sub.status, sub.expires_at, now):
                raise APIError(409, f"you already have an active {sub.level} subscription to {target[0]} "
                               f"'{target[1].name}': ask an admin to change its level", audit=audit)
            created = sub is None
            if created:
                sub = orm.Subscription(user_id=user.id, **key)
                self.db.add(sub)
            # a revoked or expired subscription is requested again
            sub.level, sub.status, sub.requested_at, sub.updated_at = values["level"], "requested", now, now
            sub.granted_by = None
            self.db.flush()
            self.audit("subscription.request", target[0], target[1].id, level=sub.level, subscription=sub.id)
        sub = self.db.scalar(_query().where(orm.Subscription.id == sub.id).execution_options(populate_existing=True))
        model = subscription_model(sub)
        if grant:
            # a grant over an existing subscription can lower its level or shorten it
            self.commit()
            await self.guard.run_safely(user=user.name)
            self.guard.expiries_changed.set()
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{model['id']}")
        self.write_json(model, status=201 if created else 200)

    def _target(self, values):
        if "product_id" in values:
            row = self.db.get(orm.Product, values["product_id"])
            kind, field = "product", "product_id"
        else:
            row = self.db.get(orm.Asset, values["asset_id"])
            kind, field = "asset", "asset_id"
        if row is None:
            msg = f"no {kind} with id {values[field]}: see GET catalog/products"
            raise APIError(422, msg, {field: msg})
        return kind, row

    def _user(self, name: str) -> orm.User:
        user = self.db.scalar(select(orm.User).where(orm.User.name == name))
        if user is None:
            msg = f"no user named {name!r} in the spaces catalog"
            raise APIError(422, msg, {"user": msg})
        return user


class SubscriptionHandler(APIHandler):
    """``/api/v1/subscriptions/{id}``"""

    def _load(self, raw_id, lock: bool = False) -> orm.Subscription:
        sid = self.id_argument(raw_id, "subscription")
        query = _query().where(orm.Subscription.id == sid)
        if lock:
            query = query.with_for_update(of=orm.Subscription)
        sub = self.db.scalar(query)
        mine = sub is not None and not self.is_service and sub.user.name == self.user_name
        if sub is None or not (mine or self.is_admin):
            raise APIError(404, f"no subscription with id {sid} among yours")
        return sub

    async def get(self, sub_id):
        # own, or admins
        self.write_json(subscription_model(self._load(sub_id)))

    async def patch(self, sub_id):
        # admins only (before the body is looked at)
        self.require_admin("subscription.update", "grant, revoke or change subscriptions",
                           target_type="subscription", target_id=str(sub_id)[:100])
        values = self.body_fields({
            "status": Field(str, check=lambda v: None if v in ("active", "revoked") else "active or revoked"),
            "level": Field(str, check=_level, describe=f"one of {', '.join(LEVELS)}"),
            "expires_at": TIME,
        })
        sub = self._load(sub_id, lock=True)
        before = {"status": sub.status, "level": sub.level, "expires_at": sub.expires_at}
        if "status" in values:
            sub.status = values["status"]
        if "level" in values:
            sub.level = values["level"]
        if "expires_at" in values:
            sub.expires_at = parse_time(values["expires_at"]) if values["expires_at"] else None
        after = {"status": sub.status, "level": sub.level, "expires_at": sub.expires_at}
        if after != before:
            if sub.status == "active" and before["status"] != "active":
                action = "subscription.grant"
                sub.granted_by = self.user_name
            elif sub.status == "revoked" and before["status"] != "revoked":
                action = "subscription.revoke"
            else:
                action = "subscription.update"
            sub.updated_at = utcnow()
            target = ("product", sub.product_id) if sub.product_id is not None else ("asset", sub.asset_id)
            self.audit(
                action, target[0], target[1], user=sub.user.name, subscription=sub.id,
                **{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in after.items()},
            )
        model = subscription_model(sub)
        if after != before:
            # a revoked, lowered or shortened subscription stops the sessions and
            # takes back the database logins it no longer allows before the answer
            user = sub.user.name
            self.commit()
            await self.guard.run_safely(user=user)
            self.guard.expiries_changed.set()
        self.write_json(model)

    async def delete(self, sub_id):
        # the requester withdraws a pending request
        sub = self._load(sub_id, lock=True)
        if sub.user.name != self.user_name:
            raise APIError(409, "only the requester withdraws a request; admins revoke with "
                           "PATCH {\"status\": \"revoked\"}")
        if sub.status != "requested":
            raise APIError(409, f"subscription {sub.id} is {sub.status}, not requested: ask an admin "
                           "to revoke it instead")
        target = ("product", sub.product_id) if sub.product_id is not None else ("asset", sub.asset_id)
        self.db.delete(sub)
        self.audit("subscription.withdraw", target[0], target[1], subscription=sub.id)
        self.set_status(204)
        self.finish()


default_handlers = [
    (r"api/v1/subscriptions", SubscriptionsHandler),
    (r"api/v1/subscriptions/([^/]+)", SubscriptionHandler),
]
