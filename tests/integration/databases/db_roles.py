"""Clean-up of the roles a test created: roles are cluster-wide and outlive the test's
databases, so each test drops those with its own prefix."""

from __future__ import annotations

import psycopg

from spaces_hub import _pg_admin_dsn


def drop_roles(prefix: str) -> None:
    """Drop every role whose name starts with ``prefix`` (after the databases that
    hold their grants are gone)."""
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        names = [r for (r,) in conn.execute(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (prefix,)
        )]
        for name in names:
            conn.execute(f'DROP ROLE IF EXISTS "{name}"')
