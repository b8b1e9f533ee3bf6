"""Publishing derived assets and reading lineage.

- ``POST /api/v1/spaces/{id}/publish`` with ``{"table", "name", "description"?}``:
  publish a table of the space's Publish database as a new derived asset, with its
  snapshot, catalog entry and lineage written together or not at all (201 with the
  asset). Owners and publishers only, and only while the space is not locked for them
  (the decision counts the space's taint). Only a plain table is published, read with
  the publisher's own rights (422 naming what else it is); its lineage is the space's
  spec and taint (:mod:`jupyterhub_spaces.databases.publish`).
- ``GET /api/v1/assets/{id}/lineage``: the asset's upstream and downstream graph,
  read from the lineage closure written at publish and the edges between its nodes.
- ``GET /api/v1/assets/{id}/lineage.svg``: the same graph drawn as SVG.

Both lineage URLs are also served under ``/api/v1/catalog/assets/{id}/``.
"""

from __future__ import annotations

from ... import databases, orm, policy
from ...databases.config import SpaceDatabases
from ...databases.lineage import lineage
from ...databases.lineage_svg import render
from ...databases.publish import PublishError, publish
from ...policy.roles import role_refusal
from ...store import decide, space_query
from ..base import APIError, APIHandler, Field, no_space, not_found

_backends: dict = {}


def shared_backend(settings) -> databases.DatabaseBackend:
    """One backend (and connection pool) per configuration for the service's life."""
    config = SpaceDatabases(config=settings.config)
    key = (
        settings.source_db_url,
        settings.db_url,
        tuple(sorted((name, repr(getattr(config, name))) for name in config.trait_names())),
    )
    if key not in _backends:
        _backends[key] = databases.backend(settings, config)
    return _backends[key]


class PublishHandler(APIHandler):
    """``POST /api/v1/spaces/{id}/publish``."""

    async def post(self, raw_id: str):
        # members with the publish permission whose access is not locked
        user = self.current_db_user()
        space_id = self.id_argument(raw_id, "space")
        space = self.db.scalar(space_query().where(orm.Space.id == space_id))
        if space is None:
            raise no_space(space_id)
        decision = decide(
            self.db, [user.name], space, lineage_enforced=self.spaces_settings.lineage_enforced
        )[user.name]
        if decision.mode == policy.Mode.not_member:
            raise no_space(space_id)
        audit = {"action": "asset.publish", "target_type": "space", "target_id": space_id}
        refused = role_refusal(decision.role, "publish", space.slug)
        if refused:
            raise APIError(403, refused, audit=audit)
        if not decision.can_activate:
            raise APIError(403, f"space {space.slug} is {decision.reason}", audit=audit)
        # the body is looked at once the caller may publish at all
        body = self.body_fields(
            {
                "table": Field(str, required=True, describe="the name of a table in the Publish database"),
                "name": Field(str, required=True, describe="the derived asset's name"),
                "description": Field(str, multiline=True, allow_empty=True, max_length=2000),
            }
        )
        config = SpaceDatabases(config=self.spaces_settings.config)
        try:
            asset = publish(
                self.db,
                shared_backend(self.spaces_settings),
                space,
                user,
                decision.role,
                body["table"],
                body["name"],
                body.get("description", ""),
                snapshot_prefix=config.snapshot_prefix,
            )
        except PublishError as e:
            raise APIError(e.status, e.message, e.fields, audit=audit if e.status == 403 else None)
        graph = lineage(self.db, asset.id)
        self.write_json(
            {
                "id": asset.id,
                "name": asset.name,
                "description": asset.description,
                "kind": asset.kind,
                "derived": True,
                "location": asset.location,
                "source_space_id": space.id,
                "created_by": asset.created_by,
                "created_at": asset.created_at,
                "lineage": graph,
            },
            status=201,
        )


class LineageBase(APIHandler):
    def graph(self, raw_id: str) -> dict:
        # any authenticated user who may browse the catalog
        asset_id = self.id_argument(raw_id, "asset")
        graph = lineage(self.db, asset_id)
        if graph is None:
            raise not_found("asset", asset_id)
        return graph


class LineageHandler(LineageBase):
    """``GET /api/v1/assets/{id}/lineage``."""

    async def get(self, raw_id: str):
        self.write_json(self.graph(raw_id))


class LineageSVGHandler(LineageBase):
    """``GET /api/v1/assets/{id}/lineage.svg``."""

    async def get(self, raw_id: str):
        svg = render(self.graph(raw_id))
        self.set_header("Content-Type", "image/svg+xml; charset=utf-8")
        # the drawing holds no script, and must never run any
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        self.finish(svg)


default_handlers = [
    (r"api/v1/spaces/([^/]+)/publish", PublishHandler),
    (r"api/v1/assets/([^/]+)/lineage", LineageHandler),
    (r"api/v1/assets/([^/]+)/lineage\.svg", LineageSVGHandler),
    # the same under the catalog's own asset URLs
    (r"api/v1/catalog/assets/([^/]+)/lineage", LineageHandler),
    (r"api/v1/catalog/assets/([^/]+)/lineage\.svg", LineageSVGHandler),
]
