"""Code Assets: code saved from a space as immutable, content-addressed versions.

A version is a *manifest* (relative path -> SHA-256 of the file's bytes) whose own
SHA-256 is the version's ``hash``; file contents are stored once in ``code_blobs``
whatever how many versions hold them. Saving content identical to the latest version
makes no new version.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import posixpath
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import orm

#: file names a Task can run, by kind
RUNNABLE = {".ipynb": "notebook", ".py": "script"}


class CodeAssetError(ValueError):
    """Bad input for a Code Asset; ``status`` is the HTTP status, ``field`` the field."""

    def __init__(self, status: int, message: str, field: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Snapshot:
    """Files ready to be saved: relative path -> bytes, and the file a Task runs."""

    files: dict[str, bytes]
    entry: str

    @property
    def manifest(self) -> dict[str, str]:
        return {path: sha256(data) for path, data in sorted(self.files.items())}

    @property
    def hash(self) -> str:
        return sha256(json.dumps(self.manifest, sort_keys=True).encode())

    @property
    def size(self) -> int:
        return sum(len(d) for d in self.files.values())

    @property
    def kind(self) -> str:
        if len(self.files) > 1:
            return "folder"
        return RUNNABLE[posixpath.splitext(self.entry)[1]]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def clean_path(path: object) -> str:
    """A relative POSIX path inside a snapshot, or :class:`CodeAssetError`."""
    if not isinstance(path, str) or not path or len(path) > 500 or "\x00" in path or "\\" in path:
        raise CodeAssetError(422, f"bad file path {str(path)[:80]!r}: give a relative path", "files")
    norm = posixpath.normpath(path)
    if norm.startswith("/") or norm == "." or norm.split("/")[0] == "..":
        raise CodeAssetError(
            422, f"file path {path!r} leaves the snapshot: give a path relative to the folder", "files"
        )
    return norm


def snapshot(files: dict[str, bytes], entry: str | None, max_bytes: int, max_files: int) -> Snapshot:
    """Check ``files`` and pick the entry (the only runnable file when not given)."""
    if not files:
        raise CodeAssetError(422, "no files to save: give at least one notebook or script", "files")
    if len(files) > max_files:
        raise CodeAssetError(413, f"{len(files)} files: a Code Asset holds at most {max_files}", "files")
    clean = {clean_path(p): d for p, d in files.items()}
    total = sum(len(d) for d in clean.values())
    if total > max_bytes:
        raise CodeAssetError(
            413, f"the files hold {total} bytes: a Code Asset holds at most {max_bytes}", "files"
        )
    runnable = sorted(p for p in clean if posixpath.splitext(p)[1] in RUNNABLE)
    if entry is None:
        if len(runnable) != 1:
            raise CodeAssetError(
                422,
                "say which file a Task runs (entry): "
                + (f"one of {runnable}" if runnable else "the files hold no .ipynb or .py file"),
                "entry",
            )
        entry = runnable[0]
    entry = clean_path(entry)
    if entry not in runnable:
        raise CodeAssetError(
            422, f"entry {entry!r} must be a .ipynb or .py file among the files", "entry"
        )
    if entry.endswith(".ipynb"):
        try:
            json.loads(clean[entry])
        except (ValueError, UnicodeDecodeError):
            raise CodeAssetError(422, f"{entry} is not a notebook (not JSON)", "entry")
    return Snapshot(clean, entry)


def read_folder(root: str, path: str, max_bytes: int, max_files: int) -> dict[str, bytes]:
    """The files at ``path`` inside ``root`` (a file, or a folder walked without
    following links), by path relative to ``path``'s folder. Nothing outside ``root``
    is read: links are skipped and ``..`` refused."""
    rel = clean_path(path)
    real_root = os.path.realpath(root)
    target = os.path.join(real_root, rel)
    if os.path.realpath(target) != target or not os.path.exists(target):
        raise CodeAssetError(404, f"no file or folder {path!r} in your space home", "path")
    found: dict[str, bytes] = {}
    total = 0

    def add(full: str, name: str) -> None:
        nonlocal total
        if os.path.islink(full) or not os.path.isfile(full):
            return
        total += os.path.getsize(full)
        if total > max_bytes or len(found) >= max_files:
            raise CodeAssetError(
                413, f"{path!r} is larger than a Code Asset may be ({max_bytes} bytes, {max_files} files)", "path"
            )
        with open(full, "rb") as f:
            found[name] = f.read()

    if os.path.isfile(target):
        add(target, posixpath.basename(rel))
        return found
    for dirpath, dirnames, filenames in os.walk(target):
        # checkpoints and caches are not code
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            add(full, os.path.relpath(full, target).replace(os.sep, "/"))
    return found


def save(
    db: Session, space: orm.Space, name: str, snap: Snapshot, author: str, message: str, lineage: dict
) -> tuple[orm.CodeAssetVersion, bool]:
    """Save ``snap`` as the next version of the space's Code Asset ``name`` (made when
    missing). Returns the version and whether it is new (identical content to the
    latest version makes none)."""
    asset = db.scalar(
        select(orm.CodeAsset).where(orm.CodeAsset.space_id == space.id, orm.CodeAsset.name == name)
    )
    if asset is None:
        asset = orm.CodeAsset(space_id=space.id, name=name, kind=snap.kind, created_by=author)
        db.add(asset)
        db.flush()
    latest = db.scalar(
        select(orm.CodeAssetVersion)
        .where(orm.CodeAssetVersion.code_asset_id == asset.id)
        .order_by(orm.CodeAssetVersion.number.desc())
        .limit(1)
    )
    if latest is not None and latest.hash == snap.hash and latest.entry == snap.entry:
        return latest, False
    manifest = snap.manifest
    known = set(db.scalars(select(orm.CodeBlob.sha256).where(orm.CodeBlob.sha256.in_(set(manifest.values())))))
    for path, digest in manifest.items():
        if digest not in known:
            db.add(orm.CodeBlob(sha256=digest, size=len(snap.files[path]), data=snap.files[path]))
            known.add(digest)
    asset.kind = snap.kind
    version = orm.CodeAssetVersion(
        code_asset_id=asset.id,
        number=(latest.number + 1) if latest else 1,
        hash=snap.hash,
        manifest=manifest,
        entry=snap.entry,
        size=snap.size,
        message=message,
        author=author,
        source_space_id=space.id,
        lineage=lineage,
    )
    db.add(version)
    db.flush()
    return version, True


def files_of(db: Session, version: orm.CodeAssetVersion) -> dict[str, bytes]:
    """The files of ``version``, by path (one query)."""
    digests = set(version.manifest.values())
    blobs = dict(db.execute(select(orm.CodeBlob.sha256, orm.CodeBlob.data).where(orm.CodeBlob.sha256.in_(digests))).all())
    return {path: blobs[digest] for path, digest in version.manifest.items()}


def diff(db: Session, old: orm.CodeAssetVersion, new: orm.CodeAssetVersion) -> str:
    """A unified text diff of every file that differs between two versions."""
    a, b = files_of(db, old), files_of(db, new)
    out: list[str] = []
    for path in sorted(set(a) | set(b)):
        if a.get(path) == b.get(path):
            continue
        before = _text(a.get(path)).splitlines(keepends=True)
        after = _text(b.get(path)).splitlines(keepends=True)
        out.extend(
            difflib.unified_diff(
                before,
                after,
                fromfile=f"v{old.number}/{path}" if path in a else "/dev/null",
                tofile=f"v{new.number}/{path}" if path in b else "/dev/null",
            )
        )
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def _text(data: bytes | None) -> str:
    if data is None:
        return ""
    try:
        return data.decode()
    except UnicodeDecodeError:
        return f"(binary, {len(data)} bytes, sha256 {sha256(data)})\n"


def restore(files: dict[str, bytes], root: str, into: str) -> list[str]:
    """Write ``files`` under ``root``/``into`` (made when missing; nothing outside
    ``root``, never through a link). Returns the paths written, relative to ``root``."""
    base = clean_path(into) if into not in ("", ".") else ""
    real_root = os.path.realpath(root)
    written = []
    for path, data in sorted(files.items()):
        rel = posixpath.join(base, path) if base else path
        target = os.path.join(real_root, rel)
        parent = os.path.dirname(target)
        os.makedirs(parent, exist_ok=True)
        if os.path.realpath(parent) != parent or os.path.islink(target):
            raise CodeAssetError(409, f"cannot restore {rel!r}: a link is in the way", "into")
        with open(target, "wb") as f:
            f.write(data)
        written.append(rel)
    return written


