"""Users the caller may see: the people picker of the Spaces app.

A user sees the users of their own organization and of the organizations an admin
made visible to it (:func:`jupyterhub_spaces.policy.org_can_see`). A user who belongs
to no organization sees only themselves.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from ... import orm, policy
from ..base import APIHandler
from ..models import user_model


def visible_org_ids(db: Session, user: orm.User) -> set[int]:
    """Ids of the organizations whose users ``user`` may see and invite."""
    if user.org_id is None:
        return set()
    me = db.get(orm.Organization, user.org_id)
    rows = db.execute(
        select(orm.Organization.name, orm.Organization.id)
        .join(orm.OrgVisibility, orm.OrgVisibility.seen_id == orm.Organization.id)
        .where(orm.OrgVisibility.seer_id == user.org_id)
    ).all()
    ids = {name: i for name, i in rows}
    ids[me.name] = me.id
    grants = {(me.name, name) for name in ids}
    return {ids[name] for name in policy.visible_orgs(me.name, grants)}


def can_see(db: Session, viewer: orm.User, other: orm.User) -> bool:
    """Whether ``viewer`` may see (and invite) ``other``."""
    if viewer.id == other.id:
        return True
    if viewer.org_id is None or other.org_id is None:
        return False
    return other.org_id in visible_org_ids(db, viewer)


def visible_user(db: Session, viewer: orm.User, name: str) -> orm.User | None:
    """The user called ``name`` if ``viewer`` may see them; None for an unknown and
    an invisible user alike, so callers cannot tell the two apart."""
    other = db.scalar(select(orm.User).where(orm.User.name == name))
    if other is None or not can_see(db, viewer, other):
        return None
    return other


class UsersHandler(APIHandler):
    """``GET /api/v1/users?q=``: users visible to the caller, by name."""

    async def get(self):
        # any user; the result is limited to the users they may see
        me = self.current_db_user()
        orgs = visible_org_ids(self.db, me)
        query = (
            select(orm.User)
            .options(selectinload(orm.User.org))
            .where(or_(orm.User.org_id.in_(orgs), orm.User.id == me.id))
            .order_by(orm.User.name)
        )
        q = self.text_argument("q") or ""
        if q:
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(
                or_(orm.User.name.ilike(pattern, escape="\\"), orm.User.display_name.ilike(pattern, escape="\\"))
            )
        self.paginate(query, user_model)


default_handlers = [
    (r"api/v1/users", UsersHandler),
]
