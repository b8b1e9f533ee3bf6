"""YAML DAGs, and what a run may read of its own space.

Users (members of the space):

- ``GET /api/v1/spaces/{id}/dags``: every YAML file of the space's owners' and
  editors' ``dags/`` folders, each with its DAGs or the reason it was refused, and
  the DAGs' last step runs (the end of each one's output);
- ``POST /api/v1/spaces/{id}/dags/{dag_id}/run`` (owners and editors): run a DAG now.

The engine (Airflow's components, with their own JupyterHub service tokens only):

- ``GET  /api/v1/engine/dags``: every space's checked DAGs, for the DAG file;
- ``POST /api/v1/engine/dag-runs``: before each step's attempt (403 with the reason
  when refused, recorded);
- ``POST /api/v1/engine/dag-runs/{run}/log`` and ``/finish``.

A running run, with its own credential (``X-Spaces-Run-Token: $SPACES_RUN_TOKEN``,
never a JupyterHub token; dead when the run ends):

- ``GET /api/v1/run/connections/{conn_id}``: one database of the run's own space, as an
  Airflow connection (JSON), with the run's own login;
- ``GET /api/v1/run/variables/{key}``: one variable of the run's own space.

Another space's connection or variable is refused (403, audited) whatever the caller
sends: the run's space comes from its credential, never from the request.
"""

from __future__ import annotations

import hmac

from sqlalchemy import select

from ... import orm, policy
from ...airflow import spec
from ...databases.config import SpaceDatabases
from ...store import decide
from ...tasks import dagruns, yamldags
from ...tasks.engine import EngineError
from ...tasks.identity import token_hash, token_run_id
from ...tasks.sandbox import SandboxError
from ..base import APIError, APIHandler, Field
from .codeassets import TasksConfigMixin
from .tasks import FINISH_FIELDS, EngineBase, EngineRunLogHandler, run_model

#: the header carrying a run's own credential
RUN_TOKEN_HEADER = "X-Spaces-Run-Token"
#: how much of each step run's output the listing shows (its end)
LISTED_LOG = 16 * 1024


def step_run_model(r: orm.TaskRun, with_log: bool = False) -> dict:
    return {**run_model(r, with_log), "dag_id": r.dag_id, "step": r.step}


class SpaceDagsHandler(TasksConfigMixin, APIHandler):
    """``/api/v1/spaces/{id}/dags``"""

    async def get(self, raw_id):
        space, _ = self.space_for(raw_id, "read")
        files = yamldags.space_files(self.db, self.tasks_config, space.id)
        runs: dict[str, list] = {}
        for r in self.db.scalars(
            select(orm.TaskRun).where(orm.TaskRun.space_id == space.id, orm.TaskRun.task_id.is_(None))
            .order_by(orm.TaskRun.id.desc()).limit(200)
        ):
            runs.setdefault(r.dag_id, [])
            if len(runs[r.dag_id]) < 10:
                model = step_run_model(r, with_log=True)
                model["log"] = model["log"][-LISTED_LOG:]
                runs[r.dag_id].append(model)
        items = []
        for f in files:
            model = f.model()
            for dag in model["dags"]:
                dag["last_runs"] = runs.get(dag["dag_id"], [])
            items.append(model)
        self.write_json({
            "items": items,
            "connections": [spec.conn_id(space.id, kind) for kind in spec.SQL_DATABASES],
        })


class SpaceDagRunHandler(TasksConfigMixin, APIHandler):
    """``/api/v1/spaces/{id}/dags/{dag_id}/run``: run a YAML DAG now (owners, editors)."""

    async def post(self, raw_id, dag):
        space, _ = self.space_for(raw_id, "edit")
        found = next((d for f in yamldags.space_files(self.db, self.tasks_config, space.id)
                      for d in f.definitions() if d["dag_id"] == dag), None)
        if found is None:
            raise APIError(404, f"no valid YAML DAG {dag[:100]!r} in space '{space.slug}': see GET "
                                f"/api/v1/spaces/{space.id}/dags for its DAGs and the errors of its files")
        owner = self.db.get(orm.User, found["owner_id"])
        decision = decide(self.db, [owner.name], space, lineage_enforced=self.spaces_settings.lineage_enforced)
        verdict = policy.may_run(decision[owner.name])
        if not verdict.allowed:
            raise APIError(403, f"DAG {found['name']!r} cannot run: {verdict.reason}",
                           audit={"action": "dag.run", "target_type": "space", "target_id": space.id})
        engine = self.settings["engine"]
        if not engine.configured:
            raise APIError(503, "no task engine is configured on this site (c.SpacesTasks.engine_url): ask an admin")
        self.audit("dag.trigger", "space", space.id, dag_id=dag)
        self.commit()
        try:
            reply = await engine.trigger_dag(dag, note=f"run now by {self.user_name}")
        except EngineError as e:
            if e.status == 404:
                raise APIError(409, "Airflow has not loaded this DAG yet (it reads new DAGs within seconds): "
                                    "try again shortly")
            raise APIError(502 if e.status != 503 else 503, f"the task engine did not start the run: {e.message}")
        self.write_json({"dag_id": dag, "engine_run_id": reply.get("dag_run_id"), "state": reply.get("state")},
                        status=202)


class EngineDagsHandler(EngineBase):
    """``/api/v1/engine/dags``"""

    async def get(self):
        self.write_json({"dags": yamldags.all_definitions(self.db, self.tasks_config)})


class EngineDagRunsHandler(EngineBase):
    """``/api/v1/engine/dag-runs``"""

    async def post(self):
        body = self.body_fields({
            "space_id": Field(int, required=True),
            "owner_id": Field(int, required=True),
            "file": Field(str, required=True, max_length=300),
            "dag": Field(str, required=True, max_length=100),
            "step": Field(str, required=True, max_length=100),
            "engine_run_id": Field(str, required=True, max_length=250),
            "try_number": Field(int),
        })
        try:
            started = dagruns.start_step(
                self.db, self.databases, self.tasks_config, body["space_id"], body["owner_id"], body["file"],
                body["dag"], body["step"], body["engine_run_id"], body.get("try_number", 1),
                self.spaces_settings.lineage_enforced, self.user_name,
                SpaceDatabases(config=self.spaces_settings.config).snapshot_prefix,
            )
        except dagruns.StepError as e:
            raise APIError(e.status, e.message)
        except SandboxError as e:
            raise APIError(503, f"the step cannot start: {e}")
        run = started.run
        if not started.allowed:
            run_id = run.id
            self.commit()
            raise APIError(403, f"run {run_id} refused: {started.reason}")
        self.write_json({
            "run_id": run.id, "kind": started.kind, "state": run.state, "reason": run.reason,
            "published": run.published or [], "log": run.log if started.kind == "publish" else "",
            "argv": started.argv, "env": started.env, "cwd": started.cwd,
            "timeout_seconds": started.timeout_seconds, "conn_id": started.conn_id,
            # the engine reads the step's connection with the run's own credential
            "run_token": (started.env or {}).get("SPACES_RUN_TOKEN", ""),
        }, status=201)


class EngineDagRunFinishHandler(EngineBase):
    """``/api/v1/engine/dag-runs/{run}/finish``"""

    async def post(self, raw_run):
        body = self.body_fields(FINISH_FIELDS)
        run = self.db.get(orm.TaskRun, self.id_argument(raw_run, "run"))
        if run is None or run.task_id is not None:
            raise APIError(404, f"no step run with id {raw_run}")
        if run.state == "running":
            dagruns.finish_step(self.db, self.databases, run, body["state"], body.get("log", ""),
                                body.get("returncode"), self.tasks_config, self.user_name)
        self.write_json(step_run_model(run))


class RunCredentialBase(TasksConfigMixin, APIHandler):
    """Handlers a running run calls with its own credential (no JupyterHub token)."""

    auth_required = False

    def run_of_token(self) -> orm.TaskRun:
        token = self.request.headers.get(RUN_TOKEN_HEADER, "")
        run_id = token_run_id(token)
        run = self.db.get(orm.TaskRun, run_id) if run_id else None
        if run is None or not run.token_hash or not hmac.compare_digest(run.token_hash, token_hash(token)):
            raise APIError(401, f"no valid run credential: send the run's own $SPACES_RUN_TOKEN in the "
                                f"{RUN_TOKEN_HEADER} header")
        if run.state != "running":
            raise APIError(401, f"run {run.id} has ended: its credential no longer reads anything")
        return run

    def refuse_other_space(self, run: orm.TaskRun, what: str, name: str) -> None:
        raise APIError(
            403,
            f"{what} {name!r} is not of this run's space: run {run.id} reads only space {run.space_id}'s "
            f"(names starting space_{run.space_id}_)",
            audit={"action": "run.secret", "target_type": "space", "target_id": run.space_id, "run_id": run.id,
                   "owner_id": run.owner_id, "asked": name[:100]},
        )


class RunConnectionHandler(RunCredentialBase):
    """``/api/v1/run/connections/{conn_id}``"""

    async def get(self, conn_id):
        run = self.run_of_token()
        space_id, kind = spec.parse_conn_id(conn_id)
        if space_id is None:
            raise APIError(404, f"no connection {conn_id[:100]!r}: a space's connections are "
                                f"space_<id>_asset, space_<id>_collaborative and space_<id>_publish")
        if space_id != run.space_id:
            self.refuse_other_space(run, "connection", conn_id)
        try:
            conn = dagruns.credentials(self.db, self.databases, run).connections[kind]
        except dagruns.StepError as e:
            raise APIError(e.status, e.message)
        details = conn.details or {}
        self.write_json({"conn_id": conn_id, "connection": {
            "conn_type": "postgres" if conn.url.startswith("postgresql") else "sqlite",
            "host": details.get("host") or details.get("path"),
            "port": details.get("port"),
            "login": details.get("user"),
            "password": details.get("password"),
            "schema": details.get("dbname"),
            "extra": {"sqlalchemy_url": conn.sqlalchemy_url, "url": conn.url, "read_only": conn.read_only,
                      "search_path": details.get("schema")},
        }})


class RunVariableHandler(RunCredentialBase):
    """``/api/v1/run/variables/{key}``"""

    async def get(self, key):
        run = self.run_of_token()
        prefix = f"space_{run.space_id}_"
        if not key.startswith(prefix):
            if key.startswith("space_"):
                self.refuse_other_space(run, "variable", key)
            raise APIError(404, f"no variable {key[:100]!r}: a space's variables are named {prefix}<name>")
        space = self.db.get(orm.Space, run.space_id)
        owner = self.db.get(orm.User, run.owner_id)
        values = yamldags.variables(self.tasks_config, space, owner.name)
        name = key[len(prefix):]
        if name not in values:
            raise APIError(404, f"space {run.space_id} has no variable {name!r}: it has {sorted(values)}")
        self.write_json({"key": key, "value": values[name]})


default_handlers = [
    (r"api/v1/spaces/([^/]+)/dags", SpaceDagsHandler),
    (r"api/v1/spaces/([^/]+)/dags/([^/]+)/run", SpaceDagRunHandler),
    (r"api/v1/engine/dags", EngineDagsHandler),
    (r"api/v1/engine/dag-runs", EngineDagRunsHandler),
    (r"api/v1/engine/dag-runs/([^/]+)/log", EngineRunLogHandler),
    (r"api/v1/engine/dag-runs/([^/]+)/finish", EngineDagRunFinishHandler),
    (r"api/v1/run/connections/([^/]+)", RunConnectionHandler),
    (r"api/v1/run/variables/([^/]+)", RunVariableHandler),
]
