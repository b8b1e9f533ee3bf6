"""Small helpers shared across the package."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """The current time in UTC, naive (as stored). One function so tests can move time."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
