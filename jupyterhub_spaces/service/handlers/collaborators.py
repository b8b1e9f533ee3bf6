"""The members of a space: list, invite, change a role, remove.

Permissions, per method:

- list: any member;
- add, change role: the owner (``manage_collaborators``);
- remove: the owner, or a member removing themselves (leaving the space).

Inviting a user the owner may not see (another organization not made visible) is
refused exactly like inviting a user who does not exist: 422 on the ``user`` field,
so the answer does not reveal whether that name exists. The owner's own membership
cannot be changed or removed (409).
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from ... import orm, policy
from ...policy.rights import narrows
from ...tasks.runs import pause_owned_tasks
from ..base import APIError, APIHandler, Field
from ..inputs import shown
from ..models import collaborator_model
from .users import visible_user

GRANTABLE = [r.value for r in policy.Role if r != policy.Role.owner]


def _check_role(value: str) -> str | None:
    if value == policy.Role.owner.value:
        return f"a space has one owner: choose one of {', '.join(GRANTABLE)}"
    return policy.validate_role(value)


ROLE = Field(str, required=True, check=_check_role, describe=f"one of {', '.join(GRANTABLE)}")


def _member(space: orm.Space, name: str) -> orm.Collaborator | None:
    return next((c for c in space.collaborators if c.user.name == name), None)


class CollaboratorsHandler(APIHandler):
    """``/api/v1/spaces/{id}/collaborators``"""

    async def get(self, space_id):
        # any member
        space, _ = self.space_for(space_id, "read")
        self.write_json({"items": [collaborator_model(c) for c in space.collaborators]})

    async def post(self, space_id):
        # owner only
        space, _ = self.space_for(space_id, "manage_collaborators", lock=True)
        values = self.body_fields({"user": Field(str, required=True, max_length=255), "role": ROLE})
        me = self.current_db_user()
        name = values["user"]
        refusal = {"action": "collaborator.add", "target_type": "space", "target_id": space.id,
                   "user": name, "role": values["role"]}
        other = visible_user(self.db, me, name)
        if other is None:
            message = (
                f"no user named {name!r} that you may invite: you can invite users of your "
                "organization and of organizations an admin made visible to it"
            )
            raise APIError(422, message, {"user": message}, audit=refusal)
        if _member(space, name) is not None:
            raise APIError(
                409,
                f"{name} is already a member of '{space.slug}': change their role with PATCH "
                f"{self.request.path}/{name}",
                audit=refusal,
            )
        row = orm.Collaborator(space_id=space.id, user_id=other.id, role=values["role"])
        self.db.add(row)
        try:
            self.db.flush()
        except IntegrityError:
            raise APIError(409, f"{name} was added to '{space.slug}' just now by another request")
        self.audit("collaborator.add", "space", space.id, user=name, role=values["role"])
        self.db.refresh(row)
        self.set_header("Location", f"{self.request.path}/{name}")
        self.write_json(collaborator_model(row), status=201)


class CollaboratorHandler(APIHandler):
    """``/api/v1/spaces/{id}/collaborators/{user}``"""

    def _target(self, space: orm.Space, name: str, action: str) -> orm.Collaborator:
        member = _member(space, name)
        if member is None:
            raise APIError(404, f"{shown(name)} is not a member of space '{space.slug}'")
        if member.role == policy.Role.owner.value:
            raise APIError(
                409,
                f"{name} owns space '{space.slug}': the owner's membership cannot change",
                audit={"action": action, "target_type": "space", "target_id": space.id, "user": name},
            )
        return member

    async def patch(self, space_id, name):
        # owner only
        space, _ = self.space_for(space_id, "manage_collaborators", lock=True)
        values = self.body_fields({"role": ROLE})
        member = self._target(space, name, "collaborator.update")
        old = member.role
        if old != values["role"]:
            member.role = values["role"]
            self.audit("collaborator.update", "space", space.id, user=name, role=values["role"], previous=old)
        model = collaborator_model(member)
        if narrows(old, values["role"]):
            # a demoted member's session and database login go before the answer:
            # the login was issued for the old role and would keep its grants
            space_id = space.id
            self.commit()
            await self.guard.run_safely(space_id=space_id, user=name, roles={(space_id, name): old})
        self.write_json(model)

    async def delete(self, space_id, name):
        # the owner, or a member leaving
        action = "read" if name == self.user_name else "manage_collaborators"
        space, _ = self.space_for(space_id, action, lock=True)
        member = self._target(space, name, "collaborator.remove")
        space_id = space.id
        self.db.delete(member)
        self.audit("collaborator.remove", "space", space_id, user=name, role=member.role)
        # the member's tasks in the space stop running as them
        for task_id in pause_owned_tasks(self.db, space_id, member.user_id, f"its owner {name} left the space"):
            self.audit("task.pause", "task", task_id, space_id=space_id, reason="owner removed")
        self.commit()
        # a removed member loses the running session and their database login before
        # the answer, not at the next reconcile
        await self.guard.run_safely(space_id=space_id, user=name)
        self.set_status(204)
        self.finish()


default_handlers = [
    (r"api/v1/spaces/([^/]+)/collaborators", CollaboratorsHandler),
    (r"api/v1/spaces/([^/]+)/collaborators/([^/]+)", CollaboratorHandler),
]
