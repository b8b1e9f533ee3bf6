"""Slugs (a space's short name) and the JupyterHub server name of a space.

A slug is 1-30 characters of lowercase letters, digits and single hyphens, starting
with a letter and not ending with a hyphen. The human name is kept separately. Slugs
are unique per owner only, so they do not name servers: a member of two spaces with
the same slug needs two servers. A space's server name derives from its id, which is
never reused (:func:`server_name`), and is itself a safe slug.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container

MAX_LENGTH = 30
_SLUG = re.compile(r"^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,29}$")
SERVER_PREFIX = "space-"
#: one spelling per id: no leading zeros, no sign, at most 10 digits (ids are 32-bit)
_SERVER = re.compile(r"^space-([1-9][0-9]{0,9})$")


def is_safe_slug(value: str) -> bool:
    return bool(_SLUG.fullmatch(value or ""))


def slugify(display_name: str, taken: Container[str] = ()) -> str:
    """A safe slug for ``display_name`` that is not in ``taken``."""
    ascii_name = (
        unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode().lower()
    )
    base = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")
    base = re.sub(r"^[^a-z]+", "", base) or "space"
    base = base[:MAX_LENGTH].rstrip("-")
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        suffix = f"-{n}"
        candidate = base[: MAX_LENGTH - len(suffix)].rstrip("-") + suffix
    return candidate


def server_name(space_id: int) -> str:
    """The JupyterHub named-server name of every member's session of space ``space_id``."""
    if isinstance(space_id, bool) or not isinstance(space_id, int) or space_id < 1:
        raise ValueError(f"a space id is a positive integer, not {space_id!r}")
    return f"{SERVER_PREFIX}{space_id}"


def space_id_of(name: str) -> int | None:
    """The space id a server named ``name`` belongs to; None when ``name`` is no
    space's server name (a slug, the default server, another spelling of an id)."""
    match = _SERVER.fullmatch(name or "")
    return int(match.group(1)) if match else None
