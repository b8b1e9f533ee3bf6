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
import stat
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


#: a folder opened without following a link at its last component
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
#: a file opened without following a link, and without blocking on a FIFO
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK


def _walk_to(root_fd: int, parts: list[str], field: str, create_as: tuple[int, int] | None = None) -> int:
    """A descriptor of the folder ``parts`` below ``root_fd``, opened one component at a
    time with ``O_NOFOLLOW``: a link anywhere on the way (even one a session puts there
    while we walk) is refused, never followed. With ``create_as`` missing folders are
    made, owned by that (uid, gid)."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            if create_as is not None:
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                    if os.geteuid() == 0:
                        os.chown(part, *create_as, dir_fd=fd, follow_symlinks=False)
                except FileExistsError:
                    pass
            try:
                child = os.open(part, _DIR, dir_fd=fd)
            except FileNotFoundError:
                raise CodeAssetError(404, f"no folder {part!r} in your space home", field) from None
            except OSError:
                # ELOOP (a link) or ENOTDIR (a file): never followed
                raise CodeAssetError(409, f"{part!r} in your space home is not a plain folder", field) from None
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _open_home(root: str, field: str) -> int:
    try:
        return os.open(root, _DIR)
    except FileNotFoundError:
        raise CodeAssetError(
            404, "your home in this space does not exist yet: activate the space once, then try again", field
        ) from None


def read_folder(root: str, path: str, max_bytes: int, max_files: int) -> dict[str, bytes]:
    """The files at ``path`` inside ``root`` (a file, or a folder walked without
    following links), by path relative to ``path``'s folder. Nothing outside ``root``
    is read: ``..`` is refused, and every component is opened relative to its folder
    with ``O_NOFOLLOW``, so a link (even one swapped in while the service reads, from
    a running session) is skipped or refused, never followed. FIFOs, devices and
    sockets are skipped."""
    rel = clean_path(path)
    parts = rel.split("/")
    found: dict[str, bytes] = {}
    total = 0

    def read_file(fd: int, name: str) -> None:
        nonlocal total
        with os.fdopen(fd, "rb") as f:
            data = f.read(max_bytes - total + 1)
        total += len(data)
        if total > max_bytes or len(found) >= max_files:
            raise CodeAssetError(
                413, f"{path!r} is larger than a Code Asset may be ({max_bytes} bytes, {max_files} files)", "path"
            )
        found[name] = data

    def walk(dir_fd: int, prefix: str) -> None:
        for entry in sorted(os.scandir(dir_fd), key=lambda e: e.name):
            if entry.is_symlink():
                continue
            try:
                fd = os.open(entry.name, _FILE, dir_fd=dir_fd)
            except OSError:
                continue  # gone, a link swapped in, or unreadable: not code
            st = os.fstat(fd)
            name = f"{prefix}{entry.name}"
            if stat.S_ISREG(st.st_mode):
                read_file(fd, name)
            elif stat.S_ISDIR(st.st_mode) and not entry.name.startswith(".") and entry.name != "__pycache__":
                # checkpoints and caches are not code
                try:
                    walk(fd, name + "/")
                finally:
                    os.close(fd)
            else:
                os.close(fd)

    missing = CodeAssetError(404, f"no file or folder {path!r} in your space home", "path")
    root_fd = _open_home(root, "path")
    try:
        parent = _walk_to(root_fd, parts[:-1], "path")
        try:
            try:
                fd = os.open(parts[-1], _FILE, dir_fd=parent)
            except OSError:
                raise missing from None
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                read_file(fd, parts[-1])
            elif stat.S_ISDIR(st.st_mode):
                try:
                    walk(fd, "")
                finally:
                    os.close(fd)
            else:
                os.close(fd)
                raise missing
        finally:
            os.close(parent)
    finally:
        os.close(root_fd)
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
    ``root``, never through a link). Returns the paths written, relative to ``root``.

    Every folder is opened relative to its parent with ``O_NOFOLLOW`` and every file is
    created with ``O_NOFOLLOW`` too, so a link a running session puts in the way is
    refused, never followed (the service may run as root). What is written belongs to
    ``root``'s owner, so the member's session can use it."""
    base = clean_path(into) if into not in ("", ".") else ""
    written = []
    root_fd = _open_home(root, "into")
    try:
        home = os.fstat(root_fd)
        owner = (home.st_uid, home.st_gid)
        for path, data in sorted(files.items()):
            rel = posixpath.join(base, clean_path(path)) if base else clean_path(path)
            parts = rel.split("/")
            parent = _walk_to(root_fd, parts[:-1], "into", create_as=owner)
            try:
                try:
                    fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600,
                                 dir_fd=parent)
                except OSError:
                    raise CodeAssetError(409, f"cannot restore {rel!r}: a link is in the way", "into") from None
                with os.fdopen(fd, "wb") as f:
                    st = os.fstat(f.fileno())
                    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                        raise CodeAssetError(409, f"cannot restore {rel!r}: it is not a plain file", "into")
                    if os.geteuid() == 0:
                        os.fchown(f.fileno(), *owner)
                    f.truncate(0)
                    f.write(data)
            finally:
                os.close(parent)
            written.append(rel)
    finally:
        os.close(root_fd)
    return written


def read_top_files(
    root: str, folder: str, suffixes: tuple[str, ...], max_file_bytes: int, max_files: int
) -> tuple[dict[str, bytes], dict[str, str]]:
    """The plain files named ``*<suffix>`` directly in ``root``/``folder`` (``{}``
    when the folder is missing), and a problem by name for each one not read: a link,
    not a plain file, too large, or beyond the first ``max_files`` by name. Opened as
    :func:`read_folder` opens, with ``O_NOFOLLOW`` at every component, and reading at
    most ``max_file_bytes + 1`` bytes of each file, so a hostile home (links, huge
    files, thousands of files) costs a bounded amount of work."""
    found: dict[str, bytes] = {}
    problems: dict[str, str] = {}
    try:
        root_fd = os.open(root, _DIR)
    except OSError:
        return found, problems
    try:
        try:
            dir_fd = _walk_to(root_fd, clean_path(folder).split("/"), "path")
        except CodeAssetError as e:
            if e.status == 404:
                return found, problems
            problems[folder] = e.message
            return found, problems
        try:
            names = []
            with os.scandir(dir_fd) as entries:
                for entry in entries:
                    if entry.name.endswith(suffixes) and not entry.name.startswith("."):
                        names.append(entry.name)
                        if len(names) > 10 * max_files:
                            break  # thousands of files: enough to say so
            names.sort()
            for name in names[max_files:]:
                problems[name] = f"not read: a dags folder holds at most {max_files} YAML files"
            for name in names[:max_files]:
                try:
                    fd = os.open(name, _FILE, dir_fd=dir_fd)
                except OSError:
                    problems[name] = "not read: a link or unreadable (links are never followed)"
                    continue
                with os.fdopen(fd, "rb") as f:
                    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                        problems[name] = "not read: not a plain file"
                        continue
                    data = f.read(max_file_bytes + 1)
                if len(data) > max_file_bytes:
                    problems[name] = f"not read: larger than {max_file_bytes} bytes"
                    continue
                found[name] = data
        finally:
            os.close(dir_fd)
    finally:
        os.close(root_fd)
    return found, problems
