"""My spaces: list, create, read, update, delete, and the access decision explained.

Permissions, per method:

- list: any user (only the spaces they are a member of);
- create: any user, up to ``SpacesSettings.space_limit`` owned spaces (409 beyond);
- read, access: any member (a non-member gets 404, as for a space that does not exist);
- update: owner or editor; delete: owner only (403 naming the roles otherwise).
"""

from __future__ import annotations

import json

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ... import orm, policy
from ... import store as store_mod
from ..base import APIError, APIHandler, Field, _json_default
from ..models import decision_model, space_model
from ..queries import member_spaces_page, space_views
from ...policy.spec import MAX_DISPLAY_NAME
from ...store import decide_all, required_keys, subscriptions_to
from ...utils import utcnow

MAX_DESCRIPTION = 2000


def _check_slug(value: str) -> str | None:
    if not policy.is_safe_slug(value):
        return (
            "1-30 lowercase letters, digits and single hyphens, starting with a letter "
            "and not ending with a hyphen"
        )
    return None


def _no_duplicates(value: list) -> str | None:
    if len(set(value)) != len(value):
        return "lists an id more than once"
    return None


SPEC_FIELDS = {
    "display_name": Field(str, describe="a non-empty string", max_length=MAX_DISPLAY_NAME),
    "description": Field(str, multiline=True, allow_empty=True, max_length=MAX_DESCRIPTION),
    "tools": Field(list, item=str, check=_no_duplicates),
    "profile": Field(str),
    "workers": Field(int),
    "products": Field(list, item=int, minimum=1, check=_no_duplicates, describe="a list of product ids"),
    "assets": Field(list, item=int, minimum=1, check=_no_duplicates, describe="a list of asset ids"),
}
CREATE_FIELDS = {
    **SPEC_FIELDS,
    "display_name": Field(str, required=True, describe="a non-empty string", max_length=MAX_DISPLAY_NAME),
    "slug": Field(str, check=_check_slug, describe="a safe slug"),
}


class SpaceAPIHandler(APIHandler):
    """What the spaces endpoints share: the caller's decision for a set of spaces and
    checking the data a spec names."""

    def decisions_for(self, spaces: list, user_name: str) -> dict[int, policy.Decision]:
        """The caller's access decision in each space, with one subscriptions query."""
        return self.decisions_until(spaces, user_name, utcnow())[0]

    def decisions_until(self, spaces: list, user_name: str, now) -> tuple[dict[int, policy.Decision], object]:
        """:meth:`decisions_for` at ``now``, and until when they stay right by time alone
        (:func:`policy.decided_until`; None: no expiry ahead)."""
        lineage = self.spaces_settings.lineage_enforced
        specs = {s.id: store_mod.space_spec(self.db, s) for s in spaces}
        subs = subscriptions_to(self.db, [user_name], required_keys(specs.values(), lineage))
        decisions = {i: decide_all(spec, subs, [user_name], now, lineage)[user_name] for i, spec in specs.items()}
        return decisions, policy.decided_until(subs, now)

    # -- answers kept between requests (see ..answers) ----------------------

    def cached(self, key: tuple, build):
        """The JSON text (and extra value) of the answer for ``key``: the one kept at
        the catalog's current revision if it is still right now, else ``build(now)``
        -> (data, until, extra), kept. Runs in the request's transaction, in a
        database thread; the revision is read before any data."""
        if self.is_service or not self.hub_user:
            self.current_db_user()  # services have no spaces: the same 403 as without the cache
        answers = self.settings.get("spaces_answers")
        revision = store_mod.catalog_revision(self.db) if answers is not None else None
        now = utcnow()
        # the caller's name and the settings that change answers complete the key
        key = (self.user_name, self.spaces_settings.lineage_enforced, *key)
        answer = answers.get(key, revision, now) if answers is not None else None
        if answer is not None:
            return answer.text, answer.extra
        data, until, extra = build(now)
        text = json.dumps(data, default=_json_default)
        if answers is not None:
            answers.put(key, revision, now, until, text, extra)
        return text, extra

    def write_json_text(self, text: str) -> None:
        self.set_status(200)
        self.finish(text)

    def check_spec(self, values: dict) -> None:
        """422 naming each invalid field of the merged spec ``values``."""
        errors = policy.validate_spec(
            values["display_name"],
            values["tools"],
            values["profile"],
            values["workers"],
            self.spaces_settings.machine_profiles,
        )
        if errors:
            raise APIError(
                422,
                "the space spec is not valid: " + "; ".join(f"{k}: {v}" for k, v in errors.items()),
                errors,
            )

    def data_rows(self, product_ids: list[int], asset_ids: list[int]):
        """The products and assets named by id; 422 naming the ids that do not exist."""
        products = {
            p.id: p for p in self.db.scalars(select(orm.Product).where(orm.Product.id.in_(product_ids)))
        } if product_ids else {}
        assets = {
            a.id: a for a in self.db.scalars(select(orm.Asset).where(orm.Asset.id.in_(asset_ids)))
        } if asset_ids else {}
        errors = {}
        unknown_p = [i for i in product_ids if i not in products]
        unknown_a = [i for i in asset_ids if i not in assets]
        if unknown_p:
            errors["products"] = f"no product with id {', '.join(map(str, unknown_p))}: see GET catalog/products"
        if unknown_a:
            errors["assets"] = f"no asset with id {', '.join(map(str, unknown_a))}: see GET catalog/products"
        if errors:
            raise APIError(422, "the space names data that does not exist: " + "; ".join(errors.values()), errors)
        return [products[i] for i in product_ids], [assets[i] for i in asset_ids]

    def set_data(self, space: orm.Space, products, assets) -> None:
        space.products = [orm.SpaceProduct(product_id=p.id, position=i) for i, p in enumerate(products)]
        space.assets = [orm.SpaceAsset(asset_id=a.id, position=i) for i, a in enumerate(assets)]

    def reload(self, space_id: int) -> orm.Space:
        self.db.flush()
        self.db.expire_all()
        return self.db.scalar(store_mod.space_query().where(orm.Space.id == space_id))


class SpacesHandler(SpaceAPIHandler):
    """``/api/v1/spaces``"""

    async def get(self):
        # any user: only the spaces they are a member of
        role = self.text_argument("role")
        if role is not None and policy.validate_role(role):
            raise APIError(422, policy.validate_role(role), {"role": policy.validate_role(role)})
        max_size = self.service.max_page_size
        offset = self.int_argument("offset", 0)
        limit = self.int_argument("limit", min(self.service.default_page_size, max_size), 1, max_size)
        self.write_json_text(await self.in_thread(lambda: self.my_spaces(role, offset, limit)))

    def my_spaces(self, role: str | None, offset: int, limit: int) -> str:
        """The page as JSON text: its items are kept between requests (with the total),
        its links are made for this request."""

        def build(now):
            user = self.current_db_user()
            total, ids, roles = member_spaces_page(self.db, user.id, offset, limit, role)
            views = space_views(self.db, ids)
            spaces = [views[i] for i in ids]
            decisions, until = self.decisions_until(spaces, user.name, now)
            return [space_model(s, roles[s.id], decisions[s.id]) for s in spaces], until, total

        items, total = self.cached(("spaces", role, offset, limit), build)
        page = {"total": total, "offset": offset, "limit": limit,
                "next": self.next_page_url(offset, limit, total)}
        return '{"items": ' + items + ", " + json.dumps(page)[1:]

    async def post(self):
        # any user, up to the space limit
        values = self.body_fields(CREATE_FIELDS)
        user = self.current_db_user()
        settings = self.spaces_settings
        profile = values.get("profile", settings.default_profile)
        spec = {
            "display_name": values["display_name"],
            "tools": values.get("tools", ["jupyterlab"]),
            "profile": profile,
            "workers": values.get(
                "workers", int(settings.machine_profiles.get(profile, {}).get("min_workers", 0))
            ),
        }
        self.check_spec(spec)
        products, assets = self.data_rows(values.get("products", []), values.get("assets", []))

        # the limit: lock the owner's row so two concurrent creates cannot both pass
        self.db.execute(select(orm.User.id).where(orm.User.id == user.id).with_for_update())
        owned = self.db.scalar(select(func.count()).where(orm.Space.owner_id == user.id))
        refusal = policy.over_space_limit(owned, settings.space_limit)
        if refusal:
            raise APIError(
                409, refusal,
                audit={"action": "space.create", "target_type": "user", "target_id": user.name,
                       "owned": owned, "limit": settings.space_limit},
            )

        # slugs are unique per owner: only the caller's own spaces can take one, so
        # neither answer tells anything about anyone else's spaces
        mine = select(orm.Space.slug).where(orm.Space.owner_id == user.id)
        slug = values.get("slug")
        if slug is not None:
            if self.db.scalar(mine.where(orm.Space.slug == slug)):
                raise APIError(409, f"you already own a space with the slug {slug!r}: choose "
                               "another or leave it out", {"slug": "taken"})
        else:
            base = policy.slugify(spec["display_name"])
            taken = set(self.db.scalars(mine.where(orm.Space.slug.like(base[:20] + "%"))))
            slug = policy.slugify(spec["display_name"], taken)

        space = orm.Space(
            slug=slug,
            display_name=spec["display_name"].strip(),
            description=values.get("description", ""),
            owner_id=user.id,
            tools=list(spec["tools"]),
            profile=spec["profile"],
            workers=spec["workers"],
        )
        self.set_data(space, products, assets)
        space.collaborators = [orm.Collaborator(user_id=user.id, role=policy.Role.owner.value)]
        self.db.add(space)
        try:
            self.db.flush()
        except IntegrityError:
            # another request of the caller took the same slug between our check and our insert
            raise APIError(409, f"you created a space with the slug {slug!r} just now: send the request again")
        self.audit(
            "space.create", "space", space.id, slug=slug,
            products=[p.id for p in products], assets=[a.id for a in assets],
        )
        space = self.reload(space.id)
        decision = self.decisions_for([space], user.name)[space.id]
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{space.id}")
        self.write_json(space_model(space, "owner", decision), status=201)


class SpaceHandler(SpaceAPIHandler):
    """``/api/v1/spaces/{id}``"""

    async def get(self, space_id):
        # any member
        def build(now):
            space, role = self.space_view_for(space_id, "read")
            decisions, until = self.decisions_until([space], self.user_name, now)
            return space_model(space, role.value, decisions[space.id]), until, None

        key = ("space", self.id_argument(space_id, "space"))
        self.write_json_text(await self.in_thread(lambda: self.cached(key, build)[0]))

    async def patch(self, space_id):
        # owner or editor (who may edit is decided before the body is looked at)
        space, role = self.space_for(space_id, "edit", lock=True)
        values = self.body_fields({**SPEC_FIELDS, "slug": Field(str)})
        if "slug" in values and values["slug"] != space.slug:
            raise APIError(
                422, "a space's slug cannot change once the space exists: create a new space for another one",
                {"slug": "cannot change"},
            )
        spec = {
            "display_name": values.get("display_name", space.display_name),
            "tools": values.get("tools", list(space.tools or [])),
            "profile": values.get("profile", space.profile),
            "workers": values.get("workers", space.workers),
        }
        self.check_spec(spec)
        changed = {}
        if "products" in values or "assets" in values:
            products, assets = self.data_rows(
                values.get("products", [sp.product_id for sp in space.products]),
                values.get("assets", [sa.asset_id for sa in space.assets]),
            )
            old = ([sp.product_id for sp in space.products], [sa.asset_id for sa in space.assets])
            new = ([p.id for p in products], [a.id for a in assets])
            if old != new:
                # replace the rows: flush the removal first so re-adding an id is no conflict
                space.products, space.assets = [], []
                self.db.flush()
                # the catalog keeps what leaves in the space's taint (a trigger adds what
                # comes): its rows may remain in the space's databases until a purge
                self.set_data(space, products, assets)
                changed["products"], changed["assets"] = new
                changed["remains_until_purge"] = [
                    *(f"product:{i}" for i in old[0] if i not in new[0]),
                    *(f"asset:{i}" for i in old[1] if i not in new[1]),
                ]
        for key in ("display_name", "tools", "profile", "workers"):
            if key in values and getattr(space, key) != spec[key]:
                setattr(space, key, spec[key].strip() if key == "display_name" else spec[key])
                changed[key] = spec[key]
        if "description" in values and values["description"] != space.description:
            space.description = values["description"]
            changed["description"] = values["description"]
        if changed:
            space.updated_at = utcnow()
            self.audit("space.update", "space", space.id, role=role.value, changed=changed)
        space = self.reload(space.id)
        decision = self.decisions_for([space], self.user_name)[space.id]
        model = space_model(space, role.value, decision)
        if "products" in changed:
            # new data can lock a running member out, or turn their workbench into a
            # sandbox: their session stops before the answer
            self.commit()
            await self.guard.run_safely()
        self.write_json(model)

    async def delete(self, space_id):
        # owner only; never while a session of the space runs
        space, role = self.space_for(space_id, "delete", lock=True)
        running = self.db.scalars(
            select(orm.Activation).where(
                orm.Activation.space_id == space.id,
                orm.Activation.state.in_(store_mod.RUNNING),
            )
        ).all()
        if running:
            users = sorted({a.user_id for a in running})
            names = self.db.scalars(select(orm.User.name).where(orm.User.id.in_(users))).all()
            raise APIError(
                409,
                f"space '{space.slug}' is active for {', '.join(names)}: suspend those "
                "sessions before deleting the space",
                audit={"action": "space.delete", "target_type": "space", "target_id": space.id},
            )
        # derived assets published from this space keep their data and lineage
        self.db.delete(space)
        self.audit("space.delete", "space", space.id, slug=space.slug, display_name=space.display_name)
        self.set_status(204)
        self.finish()


class AccessHandler(SpaceAPIHandler):
    """``/api/v1/spaces/{id}/access``: the caller's decision, and for the owner each
    member's, with the exact missing subscriptions."""

    async def get(self, space_id):
        # any member; members' decisions for roles allowed to see them (the owner)
        key = ("access", self.id_argument(space_id, "space"))
        self.write_json_text(await self.in_thread(lambda: self.cached(key, lambda now: self.access(space_id, now))[0]))

    def access(self, space_id, now) -> tuple[dict, object, None]:
        space, role = self.space_view_for(space_id, "read")
        lineage = self.spaces_settings.lineage_enforced
        show_members = policy.allowed(role, "see_member_access")
        names = [c.user.name for c in space.collaborators] if show_members else [self.user_name]
        spec = store_mod.space_spec(self.db, space)
        subs = subscriptions_to(self.db, names, required_keys([spec], lineage))
        decisions = decide_all(spec, subs, names, now, lineage)
        out = {
            "space_id": space.id,
            "slug": space.slug,
            "lineage_enforced": lineage,
            **decision_model(decisions[self.user_name]),
        }
        if show_members:
            out["members"] = [decision_model(decisions[n]) for n in names]
        return out, policy.decided_until(subs, now), None


default_handlers = [
    (r"api/v1/spaces", SpacesHandler),
    (r"api/v1/spaces/([^/]+)", SpaceHandler),
    (r"api/v1/spaces/([^/]+)/access", AccessHandler),
]
