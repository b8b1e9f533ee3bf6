"""Safe slugs for spaces: JupyterHub named-server names.

A slug is 1-30 characters of lowercase letters, digits and single hyphens, starting
with a letter and not ending with a hyphen. The human name is kept separately.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container

MAX_LENGTH = 30
_SLUG = re.compile(r"^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,29}$")


def is_safe_slug(value: str) -> bool:
    return bool(_SLUG.match(value or ""))


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
