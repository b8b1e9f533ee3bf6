"""Code Assets: code saved from a space as immutable, content-addressed versions.

- ``GET  /api/v1/spaces/{id}/code-assets``: the space's Code Assets (members);
- ``POST /api/v1/spaces/{id}/code-assets``: save a new version (owners and editors),
  from uploaded ``files`` ({path: text}) or from a ``path`` of the caller's space home
  (embedded default); identical content to the latest version makes none (200, else 201);
- ``GET  /api/v1/code-assets/{id}``: one Code Asset and its versions (members);
- ``GET  /api/v1/code-assets/{id}/versions/{n}``: one version with its files;
- ``GET  /api/v1/code-assets/{id}/diff?from=n&to=m``: a unified text diff;
- ``POST /api/v1/code-assets/{id}/versions/{n}/restore``: write the version's files
  into the caller's space home (owners and editors; embedded default).
"""

from __future__ import annotations

from sqlalchemy import select
from tornado import web

from ... import orm, policy
from ...store import space_spec
from ...tasks import codeasset
from ...tasks.config import SpacesTasks
from ..base import APIError, APIHandler, Field
from ..inputs import InputError, parse_json_object, quote, text_problem

MAX_NAME = 200
#: the most an upload is read (and thrown away) to answer it; beyond, the connection closes
DRAIN_LIMIT = 1024 * 1024 * 1024


def _check_files(value: dict) -> str | None:
    for path, text in value.items():
        problem = text_problem(path, max_length=500)
        if problem:
            return f"file path {quote(path)}: {problem}"
        if not isinstance(text, str):
            return "each file's content must be a string (the file's text)"
    return None


def version_model(v: orm.CodeAssetVersion, files: dict | None = None) -> dict:
    model = {
        "number": v.number,
        "hash": v.hash,
        "entry": v.entry,
        "size": v.size,
        "files": sorted(v.manifest) if files is None else {p: _text(d) for p, d in sorted(files.items())},
        "message": v.message,
        "author": v.author,
        "created_at": v.created_at,
        "source_space_id": v.source_space_id,
        "lineage": v.lineage,
    }
    return model


def _text(data: bytes) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        return ""


def asset_model(a: orm.CodeAsset, versions: bool = False) -> dict:
    model = {
        "id": a.id,
        "space_id": a.space_id,
        "name": a.name,
        "kind": a.kind,
        "created_by": a.created_by,
        "created_at": a.created_at,
        "latest_version": a.versions[-1].number if a.versions else None,
    }
    if versions:
        model["versions"] = [version_model(v) for v in reversed(a.versions)]
    return model


class TasksConfigMixin:
    @property
    def tasks_config(self) -> SpacesTasks:
        return self.settings["tasks_config"]

    def space_home(self, space: orm.Space) -> str:
        template = self.tasks_config.space_home_template
        if not template:
            raise APIError(
                409,
                "this site keeps no space homes the service can read or write: upload the "
                "files instead (the files field), or restore by reading a version's files",
            )
        return template.format(username=self.user_name, space=policy.server_name(space.id))

    def code_asset_for(self, raw_id: str, action: str) -> tuple[orm.CodeAsset, orm.Space]:
        """The Code Asset and its space, if the caller's role allows ``action`` there;
        404 for a Code Asset of a space the caller is not a member of."""
        asset_id = self.id_argument(raw_id, "code asset")
        asset = self.db.get(orm.CodeAsset, asset_id)
        if asset is None:
            raise APIError(404, f"no code asset with id {asset_id} among your spaces")
        try:
            space, _ = self.space_for(str(asset.space_id), action)
        except APIError as e:
            if e.status_code == 404:
                raise APIError(404, f"no code asset with id {asset_id} among your spaces")
            raise
        return asset, space

    def version_of(self, asset: orm.CodeAsset, raw: object, field: str = "version") -> orm.CodeAssetVersion:
        try:
            number = int(raw)
        except (TypeError, ValueError):
            number = None
        for v in asset.versions:
            if v.number == number:
                return v
        have = f"versions 1-{asset.versions[-1].number}" if asset.versions else "no versions"
        raise APIError(
            404 if field == "version" else 422,
            f"code asset {asset.name!r} has no version {raw!r}: it has {have}",
            {field: f"one of {have}"},
        )


@web.stream_request_body
class CodeAssetsHandler(TasksConfigMixin, APIHandler):
    """``/api/v1/spaces/{id}/code-assets``: an upload larger than a Code Asset may be
    is counted, never kept, and answered with a JSON 413 (nothing stored)."""

    _chunks: list
    _received = 0
    _too_large = False

    @property
    def max_body(self) -> int:
        # JSON escaping of a notebook's text costs at most about twice its size
        return 2 * self.tasks_config.max_code_asset_bytes + 64 * 1024

    _refused: web.HTTPError | None = None

    async def prepare(self):
        self._chunks = []
        try:
            await super().prepare()
        except web.HTTPError as e:
            # answered once the body is read: an answer before it would cut the
            # connection, and the caller (through the proxy) would see no JSON at all
            self._refused = e
        # read an oversized upload to its end too (keeping none of it), for the same
        # reason: the caller gets the JSON 413
        self.request.connection.set_max_body_size(DRAIN_LIMIT)

    def _answer_refusal(self) -> None:
        if self._refused is not None:
            raise self._refused

    async def _execute(self, transforms, *args, **kwargs):
        # tornado answers a method it does not know (405) before it reads the body;
        # here the body is read first, like every other answer of this handler
        method = self.request.method
        if method not in self.SUPPORTED_METHODS and method.isalpha() and method.isupper():
            self.SUPPORTED_METHODS = (*type(self).SUPPORTED_METHODS, method)
            setattr(self, method.lower(), self._not_allowed)
        return await super()._execute(transforms, *args, **kwargs)

    async def _not_allowed(self, *args):
        self._answer_refusal()
        raise web.HTTPError(405)

    def data_received(self, chunk: bytes):
        self._received += len(chunk)
        if self._refused is not None:
            return
        if self._received > self.max_body:
            self._too_large = True
            self._chunks = []
        elif not self._too_large:
            self._chunks.append(chunk)

    async def get(self, raw_id):
        # any member
        self._answer_refusal()
        space, _ = self.space_for(raw_id, "read")
        rows = self.db.scalars(
            select(orm.CodeAsset).where(orm.CodeAsset.space_id == space.id).order_by(orm.CodeAsset.id)
        )
        self.write_json({"items": [asset_model(a) for a in rows]})

    async def post(self, raw_id):
        # owners and editors
        self._answer_refusal()
        if self._too_large:
            raise APIError(
                413,
                f"the upload is {self._received} bytes: a Code Asset holds at most "
                f"{self.tasks_config.max_code_asset_bytes} bytes of files; save a smaller folder",
            )
        try:
            raw = parse_json_object(b"".join(self._chunks), max_bytes=self.max_body)
        except InputError as e:
            raise APIError(e.status, e.message, e.fields)
        body = self.body_fields(
            {
                "name": Field(str, required=True, describe="the Code Asset's name"),
                "message": Field(str, multiline=True, allow_empty=True, max_length=2000,
                                 describe="what changed in this version"),
                "entry": Field(str, max_length=500, describe="the notebook or script a Task runs"),
                "files": Field(dict, check=_check_files, describe="an object {path: file text}"),
                "path": Field(str, max_length=500, describe="a file or folder of your space home"),
            },
            body=raw,
        )
        if ("files" in body) == ("path" in body):
            raise APIError(422, "give either files (uploaded) or path (in your space home), not both or neither",
                           {"files": "or path", "path": "or files"})
        space, _ = self.space_for(raw_id, "edit", lock=True)
        cfg = self.tasks_config
        try:
            if "files" in body:
                files = {p: t.encode() for p, t in body["files"].items()}
            else:
                files = codeasset.read_folder(self.space_home(space), body["path"], cfg.max_code_asset_bytes,
                                              cfg.max_code_asset_files)
            snap = codeasset.snapshot(files, body.get("entry"), cfg.max_code_asset_bytes, cfg.max_code_asset_files)
        except codeasset.CodeAssetError as e:
            raise APIError(e.status, e.message, {e.field: e.message} if e.field else None)
        # what the space's data may hold rows of: its spec and its taint (the same
        # rule a publish's lineage follows)
        products, assets = policy.lineage_sources(space_spec(self.db, space))
        lineage = {
            "products": [{"id": t.id, "name": t.name} for t in products],
            "assets": [{"id": t.id, "name": t.name} for t in assets],
        }
        version, new = codeasset.save(self.db, space, body["name"].strip(), snap, self.user_name,
                                      body.get("message", ""), lineage)
        if new:
            self.audit("code_asset.save", "code_asset", version.code_asset_id, version=version.number,
                       hash=version.hash, space_id=space.id)
        asset = self.db.get(orm.CodeAsset, version.code_asset_id)
        self.db.refresh(asset, ["versions"])
        self.write_json({**asset_model(asset), "version": version_model(version), "new_version": new},
                        status=201 if new else 200)


class CodeAssetHandler(TasksConfigMixin, APIHandler):
    """``/api/v1/code-assets/{id}``"""

    async def get(self, raw_id):
        asset, _ = self.code_asset_for(raw_id, "read")
        self.write_json(asset_model(asset, versions=True))


class CodeAssetVersionHandler(TasksConfigMixin, APIHandler):
    """``/api/v1/code-assets/{id}/versions/{n}``"""

    async def get(self, raw_id, number):
        asset, _ = self.code_asset_for(raw_id, "read")
        version = self.version_of(asset, number)
        self.write_json(version_model(version, codeasset.files_of(self.db, version)))


class CodeAssetDiffHandler(TasksConfigMixin, APIHandler):
    """``/api/v1/code-assets/{id}/diff?from=n&to=m``"""

    async def get(self, raw_id):
        asset, _ = self.code_asset_for(raw_id, "read")
        old = self.version_of(asset, self.get_argument("from", None), "from")
        new = self.version_of(asset, self.get_argument("to", None), "to")
        self.write_json({"from": old.number, "to": new.number, "diff": codeasset.diff(self.db, old, new)})


class CodeAssetRestoreHandler(TasksConfigMixin, APIHandler):
    """``/api/v1/code-assets/{id}/versions/{n}/restore``"""

    async def post(self, raw_id, number):
        # owners and editors
        body = self.get_json_body() if self.request.body.strip() else {}
        check = self.body_fields(
            {"into": Field(str, max_length=500, allow_empty=True, describe="a folder of your space home")}, body=body)
        asset, space = self.code_asset_for(raw_id, "edit")
        version = self.version_of(asset, number)
        home = self.space_home(space)
        try:
            written = codeasset.restore(codeasset.files_of(self.db, version), home, check.get("into", ""))
        except codeasset.CodeAssetError as e:
            raise APIError(e.status, e.message, {e.field: e.message} if e.field else None)
        self.audit("code_asset.restore", "code_asset", asset.id, version=version.number, space_id=space.id,
                   files=written)
        self.write_json({"restored": written, "version": version.number})


default_handlers = [
    (r"api/v1/spaces/([^/]+)/code-assets", CodeAssetsHandler),
    (r"api/v1/code-assets/([^/]+)", CodeAssetHandler),
    (r"api/v1/code-assets/([^/]+)/versions/([^/]+)", CodeAssetVersionHandler),
    (r"api/v1/code-assets/([^/]+)/diff", CodeAssetDiffHandler),
    (r"api/v1/code-assets/([^/]+)/versions/([^/]+)/restore", CodeAssetRestoreHandler),
]
