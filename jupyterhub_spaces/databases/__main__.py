"""Administer the space databases from the command line.

Reads the same ``spaces_config.py`` as the hub and the service::

    python -m jupyterhub_spaces.databases --config spaces_config.py issued
    python -m jupyterhub_spaces.databases --config spaces_config.py reconcile
    python -m jupyterhub_spaces.databases --config spaces_config.py purge 12 --confirm 12

``purge`` is the only way the Collaborative and Publish data of a space is ever
deleted: deleting the space keeps it, and purge asks for the space id twice.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from ..settings import SpacesSettings
from ..store import Store
from . import backend
from .base import DatabaseError
from .config import SpaceDatabases
from .lifecycle import reconcile
from .publish import sweep_snapshots
from . import purge as purge_mod


def load_config(path: str | None) -> Config:
    if not path:
        return Config()
    if not os.path.exists(path):
        raise SystemExit(f"config file {path} does not exist: pass the spaces_config.py the hub uses")
    loader = PyFileConfigLoader(os.path.basename(path), os.path.dirname(os.path.abspath(path)))
    return loader.load_config()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jupyterhub_spaces.databases", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="the spaces_config.py the hub and the service read")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("issued", help="list the logins handed out and not taken back")
    sub.add_parser("reconcile", help="revoke logins the catalog no longer allows and "
                   "drop snapshots of interrupted publishes")
    purge = sub.add_parser("purge", help="delete a space's databases and their data for good")
    purge.add_argument("space_id", type=int)
    purge.add_argument("--confirm", required=True, help="the space id again")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    settings = SpacesSettings(config=config)
    dbs = backend(settings, SpaceDatabases(config=config))
    try:
        if args.command == "issued":
            for item in dbs.issued():
                print(f"space {item.space_id}\t{item.user}\t{item.role}\t{item.login}")
        elif args.command == "reconcile":
            store = Store(settings.db_url)
            try:
                for item in reconcile(store, dbs, settings.lineage_enforced):
                    print(f"revoked {item.user} in space {item.space_id}")
                with store.transaction() as db:
                    prefix = SpaceDatabases(config=config).snapshot_prefix
                    for name in sweep_snapshots(db, settings.source_db_url, prefix, timedelta(hours=1)):
                        print(f"dropped orphan snapshot {name}")
            finally:
                store.dispose()
        elif args.command == "purge":
            if not dbs.exists(args.space_id):
                print(f"space {args.space_id} has no databases here: nothing to purge")
                return 0
            store = Store(settings.db_url)
            try:
                purge_mod.purge(store, dbs, args.space_id, confirm=args.confirm, actor="command line")
            finally:
                store.dispose()
            print(f"purged the databases of space {args.space_id}")
    except DatabaseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        dbs.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
