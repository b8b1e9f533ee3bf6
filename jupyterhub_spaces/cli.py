"""The ``jupyterhub-spaces`` command: database upkeep for the spaces catalog."""

from __future__ import annotations

import argparse
import os
import sys



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jupyterhub-spaces", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade-db", help="migrate the spaces database to this version's schema")
    up.add_argument(
        "--db-url",
        default=os.environ.get("JUPYTERHUB_SPACES_DB_URL", ""),
        help="SQLAlchemy URL of the spaces database (default: $JUPYTERHUB_SPACES_DB_URL; "
        "the Helm chart sets it in the hub pod)",
    )
    up.add_argument("--revision", default="head", help="target alembic revision (default: head)")
    args = parser.parse_args(argv)
    if not args.db_url:
        # never a default file: migrating a new empty SQLite file here would report
        # success while the real catalog stays at its old revision
        parser.error(
            "no database to migrate: give --db-url=<the catalog's SQLAlchemy URL> or set "
            "JUPYTERHUB_SPACES_DB_URL (the URL in SpacesSettings.db_url)"
        )

    from .store import current_revision, make_engine, upgrade_db

    engine = make_engine(args.db_url)
    before = current_revision(engine)
    engine.dispose()
    upgrade_db(args.db_url, args.revision)
    engine = make_engine(args.db_url)
    after = current_revision(engine)
    engine.dispose()
    print(f"spaces database upgraded from {before or '(empty)'} to {after}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
