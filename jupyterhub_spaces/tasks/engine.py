"""Apache Airflow, the engine that runs Tasks: its configuration, the JupyterHub
managed services that run its components, and the service's one client of its REST API.

In the embedded default the hub starts and supervises Airflow's API server, scheduler
and DAG processor as managed services (:func:`airflow_services`), with the
LocalExecutor and ``AIRFLOW_HOME`` under the hub's private state directory. Airflow
lives in its own virtualenv (``scripts/setup.d/55-airflow.sh``); it imports only
:mod:`jupyterhub_spaces.airflow` of this package (through ``PYTHONPATH``), never any
user code: its one DAG file builds every Task's DAG from the definitions the spaces
service gives it.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from jupyterhub_spaces.managed import stops_promptly

#: the DAG id of a Task
DAG_PREFIX = "spaces_task_"
#: the one DAG file of the DAGs folder
DAG_FILE = """\
# Every Task of jupyterhub-spaces, one Airflow DAG each, built from the definitions the
# spaces service gives (no user code is imported here). Written by jupyterhub-spaces.
from jupyterhub_spaces.airflow.dags import task_dags

globals().update(task_dags())
"""
#: the DAG file of every space's YAML DAGs
YAML_DAG_FILE = """\
# The YAML DAGs of every space, checked by the spaces service and again here, built by
# dag-factory with our operators only (no user code is imported). Written by
# jupyterhub-spaces.
from jupyterhub_spaces.airflow.yamldags import yaml_dags

globals().update(yaml_dags())
"""
ROOT = Path(__file__).resolve().parents[2]


def dag_id(task_id: int) -> str:
    return f"{DAG_PREFIX}{int(task_id)}"


@dataclass
class AirflowSite:
    """Where and how one Airflow runs (the embedded default's, or a test's)."""

    #: AIRFLOW_HOME: private to the hub's account
    home: Path
    #: the virtualenv holding Airflow (its bin/airflow)
    venv: Path
    #: Airflow's metadata database (SQLAlchemy URL)
    db_url: str
    #: the API server's port on 127.0.0.1
    port: int
    #: the spaces service's API base URL (…/services/spaces/api/v1/), called by the provider
    spaces_api_url: str
    #: the port of the admins' UI gateway (:mod:`.adminui`); 0: no UI for admins
    ui_port: int = 0
    #: seconds between parses of the DAG file (how soon a new Task is scheduled)
    parse_interval: int = 10
    user: str = "spaces"
    #: the hub service (and proxy route) of the admins' UI; Airflow serves under it
    ui_service: str = "airflow"
    admin_scope: str = "custom:spaces:admin"

    @property
    def base_path(self) -> str:
        return f"/services/{self.ui_service}"

    @property
    def url(self) -> str:
        """Airflow's API server, under the path the admins' UI is served at."""
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    @property
    def password_file(self) -> Path:
        return self.home / "passwords.json"

    @property
    def dags_folder(self) -> Path:
        return self.home / "dags"

    def prepare(self) -> None:
        """Make AIRFLOW_HOME (mode 0700), its secrets and the DAG file. Idempotent."""
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)
        self.dags_folder.mkdir(exist_ok=True)
        for name in ("jwt_secret", "fernet_key"):
            path = self.home / name
            if not path.exists():
                _write_private(path, secrets.token_urlsafe(32) if name == "jwt_secret" else _fernet_key())
        if not self.password_file.exists():
            _write_private(self.password_file, json.dumps({self.user: secrets.token_urlsafe(24)}))
        for name, text in (("spaces_tasks.py", DAG_FILE), ("spaces_yaml_dags.py", YAML_DAG_FILE)):
            dag_file = self.dags_folder / name
            if not dag_file.exists() or dag_file.read_text() != text:
                dag_file.write_text(text)

    def environment(self) -> dict[str, str]:
        """The environment of every Airflow component."""
        return {
            "AIRFLOW_HOME": str(self.home),
            "PYTHONPATH": str(ROOT),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": (self.home / "fernet_key").read_text().strip(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.user}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.password_file),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.port}{self.base_path}/",
            "AIRFLOW__API_AUTH__JWT_SECRET": (self.home / "jwt_secret").read_text().strip(),
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(self.parse_interval),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": str(self.parse_interval),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "SPACES_API_URL": self.spaces_api_url,
            # a task reads its space's connections and variables with its run's own
            # credential (jupyterhub_spaces.airflow.secrets_backend)
            "AIRFLOW__WORKERS__SECRETS_BACKEND": "jupyterhub_spaces.airflow.secrets_backend.SpacesSecretsBackend",
            # dag-factory reports nothing anywhere
            "AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY": "False",
            "SCARF_NO_ANALYTICS": "True",
            "DO_NOT_TRACK": "True",
        }

    def command(self, component: str) -> list[str]:
        return [str(self.venv / "bin" / "python"), "-m", "jupyterhub_spaces.airflow.component", component]


def airflow_services(site: AirflowSite, python: str = sys.executable) -> list[dict]:
    """JupyterHub managed services running Airflow's API server, scheduler and DAG
    processor, and (with ``site.ui_port``) the admins' UI gateway ``airflow``: the one
    route to Airflow in the hub's proxy, open only to spaces admins. The API server
    itself listens on 127.0.0.1 with no route of its own."""
    site.prepare()
    env = site.environment()
    services = [
        {"name": f"airflow-{component}", "command": stops_promptly(site.command(component)), "environment": dict(env),
         "cwd": str(site.home)}
        for component in ("api-server", "scheduler", "dag-processor")
    ]
    if site.ui_port:
        services.append({
            "name": site.ui_service,
            "url": f"http://127.0.0.1:{site.ui_port}",
            "command": stops_promptly([
                python, "-m", "jupyterhub_spaces.tasks.adminui", f"--airflow-url={site.url}",
                f"--password-file={site.password_file}", f"--user={site.user}",
                f"--admin-scope={site.admin_scope}"]),
            "oauth_no_confirm": True,
            # the gateway sees whether the browser user holds the admin scope
            "oauth_client_allowed_scopes": [site.admin_scope],
            "display": False,
        })
    return services


def engine_role(services: list[dict], spaces_service: str = "spaces") -> dict:
    """The hub role letting Airflow's components call the spaces service."""
    return {
        "name": "spaces-engine",
        "description": "Airflow's components: call the spaces service's engine endpoints.",
        "scopes": [f"access:services!service={spaces_service}"],
        "services": [s["name"] for s in services if s["name"].startswith("airflow-")],
    }


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


# ---------------------------------------------------------------------------


class EngineError(RuntimeError):
    """Airflow could not do what was asked; ``status`` is Airflow's HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class AirflowClient:
    """The spaces service's one client of Airflow's REST API (``/api/v2``)."""

    def __init__(self, url: str, user: str, password_file: str):
        self.url = url.rstrip("/")
        self.user = user
        self.password_file = password_file
        self._token = ""
        self._token_at = 0.0

    @property
    def configured(self) -> bool:
        return bool(self.url)

    async def token(self) -> str:
        """A JWT of the service's Airflow user (fetched again every ten minutes)."""
        if self._token and time.monotonic() - self._token_at < 600:
            return self._token
        with open(self.password_file) as f:
            password = json.load(f)[self.user]
        reply = await self._fetch("POST", "/auth/token", {"username": self.user, "password": password}, auth=False)
        self._token, self._token_at = reply["access_token"], time.monotonic()
        return self._token

    async def _fetch(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {await self.token()}"
        request = HTTPRequest(
            self.url + path,
            method=method,
            headers=headers,
            body=json.dumps(body) if body is not None else None,
            request_timeout=30,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            if e.code == 401 and auth:
                self._token = ""
            detail = e.response.body.decode(errors="replace")[:500] if e.response is not None else str(e)
            raise EngineError(e.code, f"Airflow answered {e.code} to {method} {path}: {detail}")
        except OSError as e:
            raise EngineError(503, f"Airflow is not reachable at {self.url}: {e}")
        return json.loads(response.body or b"{}")

    async def trigger(self, task_id: int, note: str = "") -> dict:
        """Start a run of the Task's DAG now."""
        return await self.trigger_dag(dag_id(task_id), note)

    async def trigger_dag(self, dag: str, note: str = "") -> dict:
        """Start a run of the DAG ``dag`` (a Task's or a YAML DAG's) now."""
        return await self._fetch(
            "POST", f"/api/v2/dags/{quote(dag, safe='')}/dagRuns", {"logical_date": None, "note": note or None}
        )

    async def set_paused(self, task_id: int, paused: bool) -> dict:
        return await self._fetch("PATCH", f"/api/v2/dags/{dag_id(task_id)}", {"is_paused": paused})

    async def cancel(self, task_id: int, run_id: str) -> dict:
        return await self._fetch(
            "PATCH", f"/api/v2/dags/{dag_id(task_id)}/dagRuns/{quote(run_id, safe='')}", {"state": "failed"}
        )

    async def dag(self, task_id: int) -> dict:
        return await self._fetch("GET", f"/api/v2/dags/{dag_id(task_id)}")

    async def dag_runs(self, task_id: int, limit: int = 20) -> dict:
        return await self._fetch(
            "GET", f"/api/v2/dags/{dag_id(task_id)}/dagRuns?limit={int(limit)}&order_by=-run_after"
        )
