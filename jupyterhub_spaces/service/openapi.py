"""The OpenAPI 3 document of the Spaces API, served at
``/services/spaces/api/v1/openapi.json``.

Built in code so the schemas are written once. A test
(``tests/unit/test_openapi.py``) checks that every API route of the service appears
here with the same methods, and nothing else: adding or changing a route means
adding or changing its entry in :data:`PATHS`.
"""

from __future__ import annotations

import copy

from .. import __version__
from ..airflow import spec
from ..policy import TOOLS
from .base import APIHandler
from .inputs import MAX_INT, MAX_TEXT, MIN_INT


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required=(), **props) -> dict:
    out = {"type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    return out


def closed(required=(), **props) -> dict:
    """A request body: the service refuses fields it does not know (422)."""
    return {**obj(required, **props), "additionalProperties": False}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def arr(items: dict) -> dict:
    return {"type": "array", "items": items}


STR = {"type": "string"}
INT = {"type": "integer"}
SERVER = {"type": "string", "pattern": "^space-[1-9][0-9]{0,9}$"}
#: what every text field of a request accepts (inputs.text_problem): some visible
#: character, no control character, at most MAX_TEXT characters
TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$"}
ID = {"type": "integer", "minimum": 1, "maximum": MAX_INT}
NUMBER = {"type": "integer", "minimum": MIN_INT, "maximum": MAX_INT}
BOOL = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}
NULL_STR = {"type": ["string", "null"]}
NULL_TIME = {"type": ["string", "null"], "format": "date-time"}
ROLE = {"type": "string", "enum": ["owner", "editor", "viewer", "publisher"]}
LEVEL = {"type": "string", "enum": ["full", "spaces"]}
MODE = {"type": "string", "enum": ["not_member", "locked", "sandbox", "workbench"]}

SCHEMAS = {
    "Error": obj(
        ("status", "error", "message"),
        status=INT,
        error={**STR, "description": "the HTTP reason phrase"},
        message={**STR, "description": "what was wrong and what to do"},
        fields={"type": "object", "additionalProperties": STR,
                "description": "for 422: a message per request field"},
    ),
    "Page": obj(
        ("items", "total", "offset", "limit", "next"),
        items=arr({}),
        total=INT,
        offset=INT,
        limit=INT,
        next={**NULL_STR, "description": "URL of the next page, null on the last"},
    ),
    "Target": obj(("kind", "id", "name"), kind={"type": "string", "enum": ["product", "asset"]}, id=INT, name=STR),
    "Missing": obj(
        ("kind", "id", "name", "reason", "message"),
        kind={"type": "string", "enum": ["product", "asset"]},
        id=INT,
        name=STR,
        reason={"type": "string", "enum": ["missing", "expired", "revoked", "requested"]},
        message=STR,
        via={**nullable(ref("Target")),
             "description": "the derived asset whose lineage needs this subscription"},
    ),
    "Decision": obj(
        ("user", "mode", "role", "can_activate", "reason", "missing", "sandboxed_by"),
        user=STR,
        mode=MODE,
        role={"type": ["string", "null"], "enum": [*ROLE["enum"], None]},
        can_activate=BOOL,
        reason=STR,
        missing=arr(ref("Missing")),
        sandboxed_by=arr(ref("Target")),
    ),
    "Access": {
        "allOf": [
            ref("Decision"),
            obj(
                ("space_id", "slug", "lineage_enforced"),
                space_id=INT,
                slug=STR,
                lineage_enforced=BOOL,
                members={**arr(ref("Decision")), "description": "every member's decision (owners only)"},
            ),
        ]
    },
    "Collaborator": obj(("user", "role"), user=STR, display_name=STR, role=ROLE, added_at=TIME),
    "User": obj(("name",), name=STR, display_name=STR, org=NULL_STR),
    "Me": obj(
        ("name", "admin", "spaces_owned", "space_limit"),
        name=STR, display_name=STR, org=NULL_STR, admin=BOOL, spaces_owned=INT, space_limit=INT,
    ),
    "SubscriptionState": obj(
        ("id", "level", "status", "active"), id=INT, level=LEVEL,
        status={"type": "string", "enum": ["requested", "active", "revoked"]},
        expires_at=NULL_TIME, expired=BOOL, active=BOOL,
    ),
    "Asset": obj(
        ("id", "name", "kind"),
        id=INT, name=STR, description=STR, kind={"type": "string", "enum": ["table", "files"]},
        product_id={"type": ["integer", "null"]}, product=NULL_STR, derived=BOOL,
        subscription={**nullable(ref("SubscriptionState")), "description": "mine (catalog only)"},
    ),
    "Product": obj(
        ("id", "name", "assets"),
        id=INT, name=STR, description=STR, owner_org=NULL_STR,
        assets=arr(ref("Asset")), subscription=nullable(ref("SubscriptionState")),
    ),
    "Space": obj(
        ("id", "slug", "server", "display_name", "owner", "tools", "profile", "workers", "products",
         "assets", "collaborators", "role"),
        id=INT,
        slug={**STR, "description": "the space's short name, unique among its owner's spaces"},
        server={**SERVER, "description": "the JupyterHub server name of every member's session "
                "(the session is at /user/<name>/<server>/)"},
        display_name=STR,
        description=STR,
        owner=STR,
        tools=arr({"type": "string", "enum": list(TOOLS)}),
        profile=STR,
        workers=INT,
        products=arr(obj(("id", "name"), id=INT, name=STR)),
        assets=arr(ref("Asset")),
        collaborators=arr(ref("Collaborator")),
        created_at=TIME,
        updated_at=TIME,
        role={**ROLE, "description": "the caller's role"},
        access=obj(("mode", "can_activate", "reason"), mode=MODE, can_activate=BOOL, reason=STR),
    ),
    "SpaceInput": closed(
        (),
        display_name={**TEXT, "maxLength": 80},
        description={**STR, "maxLength": 2000, "description": "plain text; line breaks and tabs allowed"},
        slug={**STR, "pattern": "^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,29}$",
              "description": "only when creating; unique among your own spaces; chosen from "
              "display_name when left out"},
        tools={**arr({"type": "string", "enum": list(TOOLS)}), "maxItems": 100},
        profile={**TEXT, "description": "one of the site's machine profiles"},
        workers=NUMBER,
        products={**arr(ID), "maxItems": 100},
        assets={**arr(ID), "maxItems": 100},
    ),
    "Subscription": obj(
        ("id", "user", "target", "level", "status"),
        id=INT, user=STR, target=ref("Target"), level=LEVEL,
        status={"type": "string", "enum": ["requested", "active", "revoked"]},
        expires_at=NULL_TIME, expired=BOOL, active=BOOL, requested_at=TIME, updated_at=TIME,
        granted_by=NULL_STR,
    ),
    "SubscriptionInput": closed(
        ("level",),
        product_id=ID, asset_id=ID, level=LEVEL,
        user={**TEXT, "description": "admins: grant to this user directly"},
        expires_at={**NULL_TIME, "description": "admins only"},
    ),
    "SubscriptionUpdate": closed(
        (),
        status={"type": "string", "enum": ["active", "revoked"]}, level=LEVEL, expires_at=NULL_TIME,
    ),
    "AuditEvent": obj(
        ("id", "at", "actor", "action", "outcome"),
        id=INT, at=TIME, actor=STR, action=STR, target_type=STR, target_id=STR,
        outcome={"type": "string", "enum": ["ok", "refused"]}, detail={"type": "object"},
    ),
    "SessionStatus": {
        **obj(
            ("space_id", "slug", "server", "display_name", "state", "reason", "mode", "url", "progress_url"),
            space_id=INT,
            slug={**STR, "description": "the space's short name"},
            server={**SERVER, "description": "the JupyterHub named-server name of the session"},
            display_name=STR,
            state={"type": "string",
                   "enum": ["active", "starting", "stopping", "suspended", "failed", "inactive"]},
            reason={**STR, "description": "why the last activation failed (state failed)"},
            mode=MODE,
            url={**NULL_STR, "description": "the session's URL while it is active"},
            progress_url={**STR, "description": "server-sent start-up events"},
            updated_at=NULL_TIME,
        ),
        "description": "the caller's session of the space",
    },
    "ProgressEvent": {
        **obj(
            ("progress", "message"),
            progress={"type": "integer", "minimum": 0, "maximum": 100},
            message=STR,
            html_message=STR,
            ready={**BOOL, "description": "the session is up: url is where"},
            failed={**BOOL, "description": "the start failed: message says why"},
            url={**STR, "description": "the session's URL (with ready)"},
        ),
        "description": "one server-sent event of GET spaces/{space_id}/progress (its data line)",
    },
    "ToolStatus": obj(
        ("name", "status", "reason", "url"),
        name={"type": "string", "enum": list(TOOLS)},
        status={"type": "string", "enum": ["waiting", "ready", "unavailable"]},
        reason=STR,
        url=NULL_STR,
    ),
    "SessionTools": obj(
        ("space_id", "state", "tools"),
        space_id=INT,
        state={"type": "string", "enum": ["active", "starting", "stopping", "stopped"]},
        tools=arr(ref("ToolStatus")),
    ),
}

ERRORS = {
    "400": "the body is missing, not a JSON object, nested too deep or not valid Unicode; "
           "or a query argument is not UTF-8",
    "401": "not logged in",
    "403": "logged in, but not allowed (also: a caller without the service's access scope)",
    "404": "no such thing among yours: a thing you may not see answers exactly like one "
           "that does not exist",
    "409": "conflicts with the current state",
    "413": "the body is larger than the service reads (or than a Code Asset may be)",
    "422": "invalid fields or query arguments (see fields)",
    "502": "the hub or the task engine answered something the service cannot use",
    "503": "the hub or the task engine cannot be reached: try again",
}


def page_of(schema: str) -> dict:
    return {"allOf": [ref("Page"), obj(items=arr(ref(schema)))]}


def op(summary: str, ok: int | tuple = 200, schema: dict | None = None, body: str | None = None,
       errors=(), params=(), content_type="application/json", tags=(), path_params=False,
       public=False) -> dict:
    """One operation. The errors every request can meet are added here, so each
    operation documents every 4xx it can answer: 401 and 403 unless ``public``, 404
    with ``path_params``, 422 (and 400) with query ``params``, 400/413/422 with a ``body``.
    ``ok`` is a success status or a tuple of them (each with ``schema``)."""
    out = {"summary": summary, "responses": {}}
    if tags:
        out["tags"] = list(tags)
    if params:
        out["parameters"] = list(params)
    if body:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(body)}}}
    for code in ok if isinstance(ok, tuple) else (ok,):
        ok_resp = {"description": {200: "OK", 201: "created", 202: "accepted: under way",
                                   204: "done"}.get(code, "done")}
        if schema is not None and code != 204:
            ok_resp["content"] = {content_type: {"schema": schema}}
        out["responses"][str(code)] = ok_resp
    codes = set(errors)
    if not public:
        codes |= {"401", "403"}
    if path_params:
        codes.add("404")
    if params:
        codes |= {"400", "422"}
    if body:
        codes |= {"400", "413", "422"}
    for code in sorted(codes):
        out["responses"][code] = {
            "description": ERRORS[code],
            "content": {"application/json": {"schema": ref("Error")}},
        }
    return out


def path_param(name: str, description: str, kind: dict = INT) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": kind, "description": description}


def query(name: str, description: str, kind: dict = STR) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": kind, "description": description}


#: one server-sent event of the progress stream (each event, as OpenAPI 3.2 reads a
#: sequential media type's schema): its data is a ProgressEvent in JSON
SSE_EVENT = obj(
    ("data",),
    data={"type": "string", "contentMediaType": "application/json", "contentSchema": ref("ProgressEvent")},
    event=STR,
    id=STR,
)

PAGING = (query("offset", "items to skip", INT), query("limit", "items per page (capped)", INT))
SPACE = path_param("space_id", "the space's id")
USER = path_param("user", "the member's JupyterHub name", STR)
ASSET = path_param("asset_id", "the asset's id")

PATHS = {
    "/api/v1/": {
        "get": op("The API version and the caller", schema=obj(
            version=STR, api=STR, user=STR, kind=STR, admin=BOOL), tags=["me"]),
    },
    "/api/v1/me": {"get": op("The caller as the catalog knows them", schema=ref("Me"), tags=["me"])},
    "/api/v1/openapi.json": {"get": op("This document", schema={"type": "object"}, public=True, tags=["me"])},
    "/api/v1/spaces": {
        "get": op("My spaces (any role), with my access to each", schema=page_of("Space"),
                  params=(*PAGING, query("role", "only spaces where I have this role")), tags=["spaces"]),
        "post": op("Create a space I own (409 past the per-user limit or on a slug you already use)", 201, ref("Space"),
                   "SpaceInput", errors=("409",), tags=["spaces"]),
    },
    "/api/v1/spaces/{space_id}": {
        "parameters": [SPACE],
        "get": op("One of my spaces", schema=ref("Space"), path_params=True, tags=["spaces"]),
        "patch": op("Change a space (owner or editor)", schema=ref("Space"), body="SpaceInput",
                    path_params=True, tags=["spaces"]),
        "delete": op("Delete a space (owner; not while a session runs)", 204,
                     errors=("409",), path_params=True, tags=["spaces"]),
    },
    "/api/v1/spaces/{space_id}/access": {
        "parameters": [SPACE],
        "get": op("My access decision, why, and what is missing; owners see every member's",
                  schema=ref("Access"), path_params=True, tags=["spaces"]),
    },
    "/api/v1/spaces/{space_id}/collaborators": {
        "parameters": [SPACE],
        "get": op("The members and their roles", schema=obj(items=arr(ref("Collaborator"))),
                  path_params=True, tags=["collaborators"]),
        "post": op("Invite a user I may see (owner)", 201, ref("Collaborator"), "CollaboratorInput",
                   errors=("409",), path_params=True, tags=["collaborators"]),
    },
    "/api/v1/spaces/{space_id}/collaborators/{user}": {
        "parameters": [SPACE, USER],
        "patch": op("Change a member's role (owner)", schema=ref("Collaborator"), body="RoleInput",
                    errors=("409",), path_params=True, tags=["collaborators"]),
        "delete": op("Remove a member (owner), or leave", 204, errors=("409",), path_params=True,
                     tags=["collaborators"]),
    },
    "/api/v1/users": {
        "get": op("Users I may see and invite", schema=page_of("User"),
                  params=(*PAGING, query("q", "part of a name")), tags=["users"]),
    },
    "/api/v1/catalog/products": {
        "get": op("Products with their assets and my subscription to each", schema=page_of("Product"),
                  params=(*PAGING, query("q", "part of a name or description")), tags=["catalog"]),
    },
    "/api/v1/catalog/products/{product_id}": {
        "parameters": [path_param("product_id", "the product's id")],
        "get": op("One product", schema=ref("Product"), path_params=True, tags=["catalog"]),
    },
    "/api/v1/catalog/assets/{asset_id}": {
        "parameters": [ASSET],
        "get": op("One asset (derived ones too)", schema=ref("Asset"), path_params=True, tags=["catalog"]),
    },
    "/api/v1/subscriptions": {
        "get": op("My subscriptions; admins: ?user=<name> or ?user=*", schema=page_of("Subscription"),
                  params=(*PAGING, query("user", "admins: whose (* for everyone)"),
                          query("status", "requested, active or revoked")),
                  tags=["subscriptions"]),
        "post": op("Request a subscription; admins grant directly by naming user", (200, 201), ref("Subscription"),
                   "SubscriptionInput", errors=("409",), tags=["subscriptions"]),
    },
    "/api/v1/subscriptions/{subscription_id}": {
        "parameters": [path_param("subscription_id", "the subscription's id")],
        "get": op("One of my subscriptions (admins: any)", schema=ref("Subscription"),
                  path_params=True, tags=["subscriptions"]),
        "patch": op("Grant, revoke, change level or expiry (admins)", schema=ref("Subscription"),
                    body="SubscriptionUpdate", path_params=True, tags=["subscriptions"]),
        "delete": op("Withdraw my pending request", 204, errors=("409",), path_params=True,
                     tags=["subscriptions"]),
    },
    "/api/v1/audit": {
        "get": op("The audit log, newest first (admins)", schema=page_of("AuditEvent"),
                  params=(*PAGING, query("actor", "who"), query("action", "exact, or a prefix ending in '.'"),
                          query("outcome", "ok or refused"), query("target_type", "e.g. space"),
                          query("target_id", "the target's id")),
                  tags=["audit"]),
    },
    # sessions
    "/api/v1/spaces/{space_id}/activate": {
        "parameters": [SPACE],
        "post": op("Start my session of the space: 202 while it starts (follow progress_url), "
                   "200 when it is already running; 403 locked, 409 while another space is active",
                   (200, 202), ref("SessionStatus"), errors=("409", "502", "503"), path_params=True,
                   params=(query("switch", "true: suspend the active space first"),), tags=["sessions"]),
    },
    "/api/v1/spaces/{space_id}/suspend": {
        "parameters": [SPACE],
        "post": op("Stop my session (files are kept): 202 while it stops, 200 when it is stopped",
                   (200, 202), ref("SessionStatus"), errors=("502", "503"), path_params=True,
                   tags=["sessions"]),
    },
    "/api/v1/spaces/{space_id}/status": {
        "parameters": [SPACE],
        "get": op("My session's state", schema=ref("SessionStatus"), errors=("502", "503"),
                  path_params=True, tags=["sessions"]),
    },
    "/api/v1/spaces/{space_id}/progress": {
        "parameters": [SPACE],
        "get": op("Start-up progress as server-sent events: each event's data is a ProgressEvent "
                  "(JSON); the last one has ready or failed set",
                  schema=SSE_EVENT, content_type="text/event-stream",
                  errors=("502", "503"), path_params=True, tags=["sessions"]),
    },
    "/api/v1/spaces/{space_id}/tools": {
        "parameters": [SPACE],
        "get": op("Each tool's status in my running session", schema=ref("SessionTools"),
                  errors=("502", "503"), path_params=True, tags=["sessions"]),
    },
    # publishing and lineage
    "/api/v1/spaces/{space_id}/publish": {
        "parameters": [SPACE],
        "post": op("Publish a table of the space's Publish database as a derived asset (owner, publisher)",
                   201, ref("Asset"), "PublishInput", errors=("409",), path_params=True, tags=["lineage"]),
    },
    "/api/v1/assets/{asset_id}/lineage": {
        "parameters": [ASSET],
        "get": op("The asset's upstream and downstream graph", schema={"type": "object"},
                  path_params=True, tags=["lineage"]),
    },
    "/api/v1/assets/{asset_id}/lineage.svg": {
        "parameters": [ASSET],
        "get": op("The lineage graph drawn as SVG", schema=STR, content_type="image/svg+xml",
                  path_params=True, tags=["lineage"]),
    },
}
# the lineage URLs are served under the catalog's asset URLs too
PATHS["/api/v1/catalog/assets/{asset_id}/lineage"] = PATHS["/api/v1/assets/{asset_id}/lineage"]
PATHS["/api/v1/catalog/assets/{asset_id}/lineage.svg"] = PATHS["/api/v1/assets/{asset_id}/lineage.svg"]

# Code Assets and Tasks
CODE_ASSET = path_param("code_asset_id", "the Code Asset's id")
VERSION = path_param("number", "the version number")
TASK = path_param("task_id", "the task's id")
RUN = path_param("run_id", "the run's id")
ENGINE = "only the task engine's components (their JupyterHub service tokens)"
PATHS.update({
    "/api/v1/spaces/{space_id}/code-assets": {
        "parameters": [SPACE],
        "get": op("The space's Code Assets", schema=obj(items=arr(ref("CodeAsset"))), errors=("401", "404"),
                  tags=["code assets"]),
        "post": op("Save a new version of a Code Asset (owner, editor): uploaded files or a path of my space "
                   "home; identical content makes none (200)", 201, ref("CodeAsset"), "CodeAssetInput",
                   errors=("401", "403", "404", "409", "413"), tags=["code assets"]),
    },
    "/api/v1/code-assets/{code_asset_id}": {
        "parameters": [CODE_ASSET],
        "get": op("A Code Asset and its versions", schema=ref("CodeAsset"), errors=("401", "404"),
                  tags=["code assets"]),
    },
    "/api/v1/code-assets/{code_asset_id}/versions/{number}": {
        "parameters": [CODE_ASSET, VERSION],
        "get": op("One version with its files' text", schema=ref("CodeAssetVersion"), errors=("401", "404"),
                  tags=["code assets"]),
    },
    "/api/v1/code-assets/{code_asset_id}/diff": {
        "parameters": [CODE_ASSET, {**query("from", "a version number", INT), "required": True},
                       {**query("to", "a version number", INT), "required": True}],
        "get": op("A unified text diff between two versions", schema=obj(("diff",), diff=STR, **{"from": INT},
                                                                         to=INT),
                  errors=("401", "404", "422"), tags=["code assets"]),
    },
    "/api/v1/code-assets/{code_asset_id}/versions/{number}/restore": {
        "parameters": [CODE_ASSET, VERSION],
        "post": op("Write a version's files into my space home (owner, editor)", schema=obj(
            restored=arr(STR), version=INT), errors=("401", "403", "404", "409"), tags=["code assets"]),
    },
    "/api/v1/spaces/{space_id}/tasks": {
        "parameters": [SPACE],
        "get": op("The space's tasks with their last runs", schema=obj(items=arr(ref("Task"))),
                  errors=("401", "404"), tags=["tasks"]),
        "post": op("Create a task I own (owner, editor)", 201, ref("Task"), "TaskInput",
                   errors=("401", "403", "404", "409"), tags=["tasks"]),
    },
    "/api/v1/tasks/{task_id}": {
        "parameters": [TASK],
        "get": op("A task with its last runs", schema=ref("Task"), errors=("401", "404"), tags=["tasks"]),
        "patch": op("Change a task (owner, editor); changing what it runs makes me its owner", schema=ref("Task"),
                    body="TaskInput", errors=("401", "403", "404", "409"), tags=["tasks"]),
        "delete": op("Delete a task (owner, editor)", 204, errors=("401", "403", "404"), tags=["tasks"]),
    },
    "/api/v1/tasks/{task_id}/run": {
        "parameters": [TASK],
        "post": op("Run the task now (refused with the reason when its owner may not run it)", 202,
                   obj(task_id=INT, engine_run_id=NULL_STR, state=NULL_STR),
                   errors=("401", "403", "404", "409", "502", "503"), tags=["tasks"]),
    },
    "/api/v1/tasks/{task_id}/pause": {
        "parameters": [TASK],
        "post": op("Pause the task's schedule", schema=ref("Task"), errors=("401", "403", "404"), tags=["tasks"]),
    },
    "/api/v1/tasks/{task_id}/resume": {
        "parameters": [TASK],
        "post": op("Resume the task's schedule", schema=ref("Task"), errors=("401", "403", "404"), tags=["tasks"]),
    },
    "/api/v1/tasks/{task_id}/runs": {
        "parameters": [TASK],
        "get": op("The task's runs, newest first", schema=page_of("TaskRun"), params=PAGING,
                  errors=("401", "404", "422"), tags=["tasks"]),
    },
    "/api/v1/tasks/{task_id}/runs/{run_id}": {
        "parameters": [TASK, RUN],
        "get": op("One run with the end of its output", schema=ref("TaskRun"), errors=("401", "404"), tags=["tasks"]),
    },
    "/api/v1/tasks/{task_id}/runs/{run_id}/cancel": {
        "parameters": [TASK, RUN],
        "post": op("Cancel a running run (owner, editor)", 202, obj(run_id=INT, state=STR),
                   errors=("401", "403", "404", "409", "502"), tags=["tasks"]),
    },
    "/api/v1/engine/tasks": {
        "get": op(f"Every task's definition, for the DAG file ({ENGINE})", schema=obj(tasks=arr({"type": "object"})),
                  errors=("401", "403"), tags=["engine"]),
    },
    "/api/v1/engine/runs": {
        "post": op(f"Before an attempt: the command to run, or 403 with the reason it is refused ({ENGINE})", 201,
                   {"type": "object"}, "EngineRunInput", errors=("401", "403", "404"), tags=["engine"]),
    },
    "/api/v1/engine/runs/{run_id}/log": {
        "parameters": [RUN],
        "post": op(f"The output so far of a running run ({ENGINE})", 204, body="EngineLogInput",
                   errors=("401", "403", "404"), tags=["engine"]),
    },
    "/api/v1/engine/runs/{run_id}/finish": {
        "parameters": [RUN],
        "post": op(f"The end of an attempt: credentials revoked, outputs published ({ENGINE})",
                   schema=ref("TaskRun"), body="EngineFinishInput", errors=("401", "403", "404"), tags=["engine"]),
    },
})
SCHEMAS["CodeAssetVersion"] = obj(
    number=INT, hash={**STR, "description": "SHA-256 of the manifest (path -> SHA-256 of the file)"},
    entry=STR, size=INT, files={"description": "paths (in lists) or {path: text} (one version)"},
    message=STR, author=STR, created_at=TIME, source_space_id=nullable(INT),
    lineage={"type": "object", "description": "the space's products and assets when it was saved"},
)
SCHEMAS["CodeAsset"] = obj(
    id=INT, space_id=INT, name=STR, kind={"type": "string", "enum": ["notebook", "script", "folder"]},
    created_by=STR, created_at=TIME, latest_version=nullable(INT), versions=arr(ref("CodeAssetVersion")),
    version=ref("CodeAssetVersion"), new_version=BOOL,
)
SCHEMAS["CodeAssetInput"] = obj(
    ("name",), name=STR, message=STR, entry={**STR, "description": "the notebook or script a task runs"},
    files={"type": "object", "additionalProperties": STR, "description": "{path: text}; or give path"},
    path={**STR, "description": "a file or folder of my space home; or give files"},
)
SCHEMAS["TaskRun"] = obj(
    id=INT, task_id=nullable(INT), state={"type": "string", "enum": ["running", "success", "failed", "refused", "cancelled"]},
    reason=STR, try_number=INT, engine_run_id=STR, started_at=TIME, ended_at=NULL_TIME,
    duration_seconds=nullable({"type": "number"}), published=arr(INT), log=STR,
)
PUBLISH_ITEM = obj(("table", "name"), table=STR, name=STR)
SCHEMAS["Task"] = obj(
    id=INT, space_id=INT, name=STR, owner=STR, code_asset_id=INT, version=INT, entry=STR,
    parameters={"type": "object"}, schedule=NULL_STR, timezone=STR, profile=STR, timeout_seconds=INT,
    retries=INT, publish=arr(PUBLISH_ITEM), paused=BOOL, paused_reason=STR, engine_dag_id=STR,
    next_run_at={**NULL_TIME, "description": "when the schedule fires next; null when paused or on demand only"},
    created_at=TIME, updated_at=TIME, last_runs=arr(ref("TaskRun")),
)
SCHEMAS["TaskInput"] = obj(
    name=STR, code_asset_id=INT, version={**INT, "description": "default: the latest"},
    parameters={"type": "object", "description": "{name: string, number or boolean}"},
    schedule={**NULL_STR, "description": "cron (5 fields) or @hourly/@daily/...; null: on demand"},
    timezone={**STR, "description": "IANA time zone of the schedule"}, profile=STR,
    timeout_seconds=INT, retries=INT, publish=arr(PUBLISH_ITEM), paused=BOOL,
)
SCHEMAS["EngineLogInput"] = obj(("log",), log=STR)
SCHEMAS["EngineRunInput"] = obj(("task_id", "engine_run_id"), task_id=INT, engine_run_id=STR, try_number=INT)
SCHEMAS["EngineFinishInput"] = obj(
    ("state",), state={"type": "string", "enum": ["success", "failed", "cancelled"]}, log=STR,
    returncode=nullable(INT),
)

# YAML DAGs, and what a running run reads of its own space
DAG = path_param("dag_id", "the YAML DAG's Airflow DAG id (space_<id>_u<owner id>_<name>)", STR)
RUN_CREDENTIAL = [{"runToken": []}]
PATHS.update({
    "/api/v1/spaces/{space_id}/dags": {
        "parameters": [SPACE],
        "get": op("The YAML files of the space's dags/ folders (owners' and editors' homes), each with its DAGs "
                  "or its error, the DAGs' last step runs, and the connection ids a SQL step may name",
                  schema=obj(("items", "connections"), items=arr(ref("YamlDagFile")), connections=arr(STR)),
                  errors=("401", "404"), tags=["yaml dags"]),
    },
    "/api/v1/spaces/{space_id}/dags/{dag_id}/run": {
        "parameters": [SPACE, DAG],
        "post": op("Run a YAML DAG now (owner, editor; refused with the reason when its owner may not run it)",
                   202, obj(dag_id=STR, engine_run_id=NULL_STR, state=NULL_STR),
                   errors=("401", "403", "404", "409", "502", "503"), tags=["yaml dags"]),
    },
    "/api/v1/engine/dags": {
        "get": op(f"Every space's checked YAML DAGs, for the DAG file ({ENGINE})",
                  schema=obj(dags=arr({"type": "object"})), errors=("401", "403"), tags=["engine"]),
    },
    "/api/v1/engine/dag-runs": {
        "post": op(f"Before a YAML DAG step's attempt: what to run (a publish step is done at once), or 403 with "
                   f"the reason it is refused ({ENGINE})", 201, {"type": "object"}, "EngineStepInput",
                   errors=("401", "403", "404", "409", "503"), tags=["engine"]),
    },
    "/api/v1/engine/dag-runs/{run_id}/log": {
        "parameters": [RUN],
        "post": op(f"The output so far of a running step ({ENGINE})", 204, body="EngineLogInput",
                   errors=("401", "403", "404"), tags=["engine"]),
    },
    "/api/v1/engine/dag-runs/{run_id}/finish": {
        "parameters": [RUN],
        "post": op(f"The end of a step's attempt: its credentials revoked ({ENGINE})", schema=ref("TaskRun"),
                   body="EngineFinishInput", errors=("401", "403", "404"), tags=["engine"]),
    },
    "/api/v1/run/connections/{conn_id}": {
        "parameters": [path_param("conn_id", "space_<id>_asset, space_<id>_collaborative or space_<id>_publish",
                                  STR)],
        "get": {**op("One database of the calling run's own space as an Airflow connection, with the run's own "
                     "login (the spaces secrets backend asks this); another space's is refused",
                     schema=obj(("conn_id", "connection"), conn_id=STR, connection={"type": "object"}),
                     errors=("401", "403", "404"), tags=["runs"], public=True),
                "security": RUN_CREDENTIAL},
    },
    "/api/v1/run/variables/{key}": {
        "parameters": [path_param("key", "space_<id>_<name>", STR)],
        "get": {**op("One variable of the calling run's own space (id, slug, name, and its owner's "
                     "dags/variables.yaml); another space's is refused",
                     schema=obj(("key", "value"), key=STR, value=STR),
                     errors=("401", "403", "404"), tags=["runs"], public=True),
                "security": RUN_CREDENTIAL},
    },
})
SCHEMAS["YamlDagFile"] = obj(
    ("owner", "file", "error", "dags"), owner=STR, file={**STR, "description": "dags/<name>.yaml"},
    error={**NULL_STR, "description": "why the file gives no DAG (where in the file, and what to do)"},
    dags=arr(obj(name=STR, dag_id=STR, schedule=NULL_STR, timezone=STR,
                 steps=arr(obj(name=STR, operator=STR, dependencies=arr(STR))),
                 last_runs=arr({"allOf": [ref("TaskRun"), obj(dag_id=STR, step=STR)]}))),
)
SCHEMAS["YamlDagFileContent"] = {
    **copy.deepcopy(spec.FILE_SCHEMA),
    "description": "What one YAML file of a dags/ folder holds: DAG names to DAGs. Each step is then checked "
                   "against its operator's schema (code_asset, sql or publish: see YamlDagStep).",
}
SCHEMAS["YamlDagStep"] = {"oneOf": [copy.deepcopy(s) for s in spec.STEP_SCHEMAS.values()]}
SCHEMAS["EngineStepInput"] = obj(
    ("space_id", "owner_id", "file", "dag", "step", "engine_run_id"), space_id=INT, owner_id=INT, file=STR,
    dag=STR, step=STR, engine_run_id=STR, try_number=INT,
)

SCHEMAS["CollaboratorInput"] = closed(("user", "role"), user={**TEXT, "maxLength": 255},
                                      role={"type": "string", "enum": ["editor", "viewer", "publisher"]})
SCHEMAS["RoleInput"] = closed(("role",), role={"type": "string", "enum": ["editor", "viewer", "publisher"]})
SCHEMAS["PublishInput"] = closed(("table", "name"), table=TEXT, name=TEXT,
                                 description={**STR, "maxLength": 2000})


def document(prefix: str = "/services/spaces/") -> dict:
    """The OpenAPI document for a service mounted at ``prefix``."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jupyterhub-spaces",
            "version": __version__,
            "description": (
                "Governed, collaborative data Spaces for JupyterHub. Authenticate with the "
                "JupyterHub login cookie (browser; writes need the X-XSRFToken header) or a "
                "JupyterHub API token ('Authorization: token <token>'). Admin endpoints need the "
                "custom:spaces:admin scope. Every error is JSON {status, error, message, fields?}."
            ),
        },
        "servers": [{"url": prefix.rstrip("/")}],
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization",
                          "description": "'token <JupyterHub API token>'"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "service-spaces"},
                "runToken": {"type": "apiKey", "in": "header", "name": "X-Spaces-Run-Token",
                             "description": "a running run's own credential ($SPACES_RUN_TOKEN)"},
            },
        },
        "security": [{"token": []}, {"cookie": []}],
        "paths": copy.deepcopy(PATHS),
    }


class OpenAPIHandler(APIHandler):
    """``GET /api/v1/openapi.json``: public, so tools can read it before logging in."""

    auth_required = False

    async def get(self):
        # anyone
        self.write_json(document(self.service.service_prefix))


default_handlers = [
    (r"api/v1/openapi\.json", OpenAPIHandler),
]
