"""A hub with the spaces service and a real Airflow as managed services, for the Tasks
tests and ``bench/tasks.py``: see :func:`running_tasks_hub` (the fixtures in
``conftest.py`` describe what it holds)."""

from __future__ import annotations

import os
import sys
import time
import textwrap
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "databases"))

from spaces_hub import SpacesHub, free_port, postgres_database  # noqa: E402
from db_roles import drop_roles  # noqa: E402

from jupyterhub_spaces import orm  # noqa: E402
from jupyterhub_spaces.store import Store  # noqa: E402
from jupyterhub_spaces.tasks.engine import AirflowClient  # noqa: E402

AIRFLOW_VENV = Path(
    os.environ.get("SPACES_AIRFLOW_VENV")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jupyterhub-spaces" / "airflow-venv"
)


@dataclass
class TasksHub:
    hub: SpacesHub
    store: Store
    ids: dict
    airflow: AirflowClient
    role_prefix: str
    data_url: str
    airflow_home: Path
    airflow_port: int


def _seed(store: Store) -> dict:
    ids = {}
    with store.transaction() as db:
        org = orm.Organization(name="northwind")
        db.add(org)
        db.flush()
        users = {n: orm.User(name=n, org_id=org.id) for n in ("alice", "bob", "carol", "dave", "admin")}
        db.add_all(users.values())
        retail = orm.Product(name="retail", owner_org_id=org.id)
        db.add(retail)
        db.flush()
        db.add(orm.Asset(name="stores", kind="files", location="retail/stores", product_id=retail.id, owner_org_id=org.id))
        for name, u in users.items():
            sub = orm.Subscription(user_id=u.id, product_id=retail.id, level="full", status="active")
            db.add(sub)
            db.flush()
            ids[f"sub:{name}:retail"] = sub.id
        for slug, members in (
            ("forecast", (("alice", "owner"), ("bob", "editor"), ("carol", "viewer"))),
            ("other", (("dave", "owner"),)),
        ):
            space = orm.Space(slug=slug, display_name=slug.title(), owner_id=users[members[0][0]].id,
                              tools=["jupyterlab"], profile="small")
            space.products = [orm.SpaceProduct(product_id=retail.id)]
            space.collaborators = [orm.Collaborator(user_id=users[n].id, role=r) for n, r in members]
            db.add(space)
            db.flush()
            ids[f"space:{slug}"] = space.id
        ids.update({f"user:{n}": u.id for n, u in users.items()})
        ids["product:retail"] = retail.id
    return ids


def _wait_for_airflow(hub: SpacesHub, port: int, timeout: float = 300) -> None:
    """Until Airflow's API server answers and its scheduler and DAG processor report in."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = requests.get(f"http://127.0.0.1:{port}/services/airflow/api/v2/monitor/health", timeout=5)
            health = r.json() if r.status_code == 200 else {}
            if all(health.get(k, {}).get("status") == "healthy" for k in ("metadatabase", "scheduler", "dag_processor")):
                return
        except (requests.RequestException, ValueError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"Airflow did not come up in {timeout}s:\n{hub.log_tail(120)}")
        time.sleep(2)


@contextmanager
def running_tasks_hub(workdir: Path):
    """A started :class:`TasksHub` in ``workdir``, stopped and cleaned up after."""
    prefix = f"tk{uuid.uuid4().hex[:8]}_"
    with ExitStack() as stack:
        # roles go last, once the databases holding their grants are dropped
        stack.callback(drop_roles, prefix)
        catalog_url = stack.enter_context(postgres_database("spaces_tasks"))
        airflow_db = stack.enter_context(postgres_database("spaces_airflow"))
        data_url = stack.enter_context(postgres_database("spaces_taskdata"))
        store = Store(catalog_url)
        stack.callback(store.dispose)
        ids = _seed(store)
        port, ui_port = free_port(), free_port()
        home = workdir / "airflow"
        spaces_config = textwrap.dedent(f"""
            c.SpaceDatabases.backend = "postgresql"
            c.SpaceDatabases.admin_url = {data_url!r}
            c.SpaceDatabases.role_prefix = {prefix!r}
            c.SpacesTasks.engine_url = "http://127.0.0.1:{port}/services/airflow"
            c.SpacesTasks.engine_password_file = {str(home / 'passwords.json')!r}
            c.SpacesTasks.run_root = {str(workdir / 'task-runs')!r}
            c.SpacesTasks.space_home_template = {str(workdir / 'homes' / '{username}' / '{space}')!r}
        """)
        extra_config = textwrap.dedent(f"""
            from pathlib import Path
            from jupyterhub_spaces.tasks.engine import AirflowSite, airflow_services, engine_role
            _spaces = next(s for s in c.JupyterHub.services if s["name"] == "spaces")
            _site = AirflowSite(
                home=Path({str(home)!r}),
                venv=Path({str(AIRFLOW_VENV)!r}),
                db_url={airflow_db.replace('postgresql+psycopg://', 'postgresql+psycopg2://')!r},
                port={port},
                ui_port={ui_port},
                spaces_api_url=_spaces["url"] + "/services/spaces/api/v1/",
                parse_interval=3,
            )
            _airflow = airflow_services(_site)
            c.JupyterHub.services.extend(_airflow)
            c.JupyterHub.load_roles.append(engine_role(_airflow))
            next(r for r in c.JupyterHub.load_roles if r["name"] == "spaces-admin")["scopes"].append(
                "access:services!service=airflow")
        """)
        hub = SpacesHub(workdir, catalog_url, extra_config=extra_config, spaces_config=spaces_config)
        hub.start(timeout=180)
        stack.callback(hub.stop)
        airflow = AirflowClient(f"http://127.0.0.1:{port}/services/airflow", "spaces", str(home / "passwords.json"))
        _wait_for_airflow(hub, port)
        yield TasksHub(hub, store, ids, airflow, prefix, data_url, home, port)
