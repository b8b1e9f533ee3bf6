"""A real hub wired to the space databases (SQLite or PostgreSQL) for the demo
catalog, and helpers to reach a session's databases as code in the session would.
Used by the module fixtures of ``test_session_wiring`` and ``test_rights_in_force``."""

from __future__ import annotations

import json
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import update

from spaces_hub import API, SpacesHub, api_json, postgres_available, postgres_database
from jupyterhub_spaces import demo, orm
from jupyterhub_spaces.settings import SpacesSettings
from jupyterhub_spaces.store import Store

from db_roles import drop_roles

SPAWNER_CONFIG = """
c.JupyterHub.spawner_class = "local-space"
c.JupyterHub.allow_named_servers = True
from jupyterhub_spaces.hub_roles import service_role
c.JupyterHub.load_roles.append(service_role())
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.LocalSpaceSpawner.home_dir_template = %r
"""


def start_wired_hub(backend: str, tmp_path_factory, spaces_config: str = ""):
    """Yield a started :class:`SpacesHub` (``store`` and ``backend`` attached) for
    the demo catalog on ``backend``; stop it and drop its roles after."""
    workdir = tmp_path_factory.mktemp(f"wiring-{backend}")
    db_url = f"sqlite:///{workdir / 'spaces.sqlite'}"
    with ExitStack() as stack:
        prefix = ""
        if backend == "postgresql":
            if not postgres_available():
                pytest.skip("no PostgreSQL server answers at $SPACES_TEST_POSTGRES_URL")
            data_url = stack.enter_context(postgres_database("spaces_wiring"))
            prefix = f"w{uuid.uuid4().hex[:8]}_"
            # the source tables live in the same cluster, where no member role reads them
            source_url = data_url
            dbs_config = (
                "c.SpaceDatabases.backend = 'postgresql'\n"
                f"c.SpaceDatabases.admin_url = {data_url!r}\n"
                f"c.SpaceDatabases.role_prefix = {prefix!r}\n"
            )
        else:
            source_url = f"sqlite:///{workdir / 'sources.sqlite'}"
            dbs_config = f"c.SpaceDatabases.sqlite_root = {str(workdir / 'dbs')!r}\n"
        settings = SpacesSettings(db_url=db_url, data_root=str(workdir / "data"), source_db_url=source_url)
        store = Store(db_url)
        demo.seed(store, settings)
        with store.transaction() as db:
            bob = db.query(orm.User).filter_by(name="bob").one()
            # bob gets a workbench here: a sandbox desktop needs programs CI may lack
            db.execute(update(orm.Subscription).where(orm.Subscription.user_id == bob.id).values(level="full"))
        h = SpacesHub(
            workdir,
            db_url,
            extra_config=SPAWNER_CONFIG % (str(workdir / "homes" / "{username}" / "{space}")),
            spaces_config=f"c.SpacesSettings.source_db_url = {source_url!r}\n" + dbs_config + spaces_config,
        )
        h.start()
        h.store = store
        h.backend = backend
        try:
            yield h
        finally:
            h.stop()
            store.dispose()
        # (the data database is dropped by the stack, then the roles)
    if prefix:
        drop_roles(prefix)


def space_id(h, slug):
    with h.store.transaction() as db:
        return db.query(orm.Space).filter_by(slug=slug).one().id


def wait_status(client, sid, want, timeout=180):
    deadline = time.monotonic() + timeout
    while True:
        status = api_json(client.get(f"{API}spaces/{sid}/status"))
        if status.get("state") == want:
            return status
        assert time.monotonic() < deadline, f"space {sid} never became {want}: {status}"
        time.sleep(0.5)


def activate(h, user, sid):
    client = h.token_session(user)
    r = client.post(f"{API}spaces/{sid}/activate")
    assert r.status_code in (200, 202), r.text
    status = wait_status(client, sid, "active")
    return client, status["url"]


def session_env(h, user: str, server: str) -> dict:
    """The environment of the session process of ``user``'s server ``server`` of this
    hub (other hubs on the machine may run sessions of the same names)."""
    home = str(h.workdir / "homes" / user / server)
    for proc in Path("/proc").iterdir():
        try:
            raw = (proc / "environ").read_bytes()
        except (OSError, ValueError):
            continue
        env = dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)
        if (
            env.get("JUPYTERHUB_USER") == user
            and env.get("JUPYTERHUB_SERVER_NAME") == server
            and home in env.values()
        ):
            return env
    raise AssertionError(f"no session process of {user}/{server}")


def session_databases(h, user, server) -> dict:
    """The credentials file of the session, checked against the session's environment."""
    env = session_env(h, user, server)
    path = Path(env["SPACES_DATABASES_FILE"])
    assert path.parent.parent == h.workdir / "homes" / user / server
    assert path.stat().st_mode & 0o077 == 0  # readable by the session's user only
    doc = json.loads(path.read_text())["databases"]
    for kind in ("asset", "collaborative", "publish"):
        assert env[f"SPACES_{kind.upper()}_DB_URL"] == doc[kind]["url"]
    return doc


def engine(doc, kind):
    return sa.create_engine(doc[kind]["sqlalchemy_url"])
