"""Tasks: a Code Asset version run on a schedule or on demand, as its owner, by Airflow.

Users (members of the task's space):

- ``GET  /api/v1/spaces/{id}/tasks`` (members), ``POST`` (owners and editors: the
  caller becomes the task's owner);
- ``GET /api/v1/tasks/{id}`` (members), ``PATCH`` and ``DELETE`` (owners and editors; a
  change to what the task runs makes the caller its owner, so no one's code runs with
  someone else's rights);
- ``POST /api/v1/tasks/{id}/run|pause|resume`` (owners and editors);
- ``GET /api/v1/tasks/{id}/runs`` and ``/runs/{run}`` (with the run's log), and
  ``POST /api/v1/tasks/{id}/runs/{run}/cancel``.

The engine (Airflow's components, with their own JupyterHub service tokens only):

- ``GET  /api/v1/engine/tasks``: every Task's definition, for the DAG file;
- ``POST /api/v1/engine/runs``: before each attempt: 201 with the command to run, or
  403 with the reason the run is refused (recorded as a refused run);
- ``POST /api/v1/engine/runs/{run}/log``: the output so far, every few seconds;
- ``POST /api/v1/engine/runs/{run}/finish``: the end of an attempt.
"""

from __future__ import annotations

import logging
from datetime import timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ... import orm, policy
from ...databases.config import SpaceDatabases
from ...databases.publish import PublishError
from ...tasks import codeasset, runs, schedule
from ...tasks.engine import EngineError, dag_id
from ...tasks.sandbox import SandboxError
from ...utils import utcnow
from ..base import APIError, APIHandler, Field
from .codeassets import TasksConfigMixin

log = logging.getLogger(__name__)

RUN_STATES = ("success", "failed", "cancelled")
#: the most output the engine sends at once (the operator sends the end, 256 KiB)
LOG_CHARS = 512 * 1024


def _between(lo: int, hi: int):
    def check(value: int) -> str | None:
        return None if lo <= value <= hi else f"from {lo} to {hi}"

    return check


TASK_FIELDS = {
    "name": Field(str, describe="the task's name"),
    "code_asset_id": Field(int, describe="the id of a Code Asset of this space"),
    "version": Field(int, describe="a version number of that Code Asset (default: its latest)"),
    "parameters": Field(dict, check=schedule.check_parameters, describe="an object {name: value}"),
    "schedule": Field(str, nullable=True, check=schedule.check_cron,
                      describe="a cron expression, or null to run on demand only"),
    "timezone": Field(str, check=schedule.check_timezone, describe="an IANA time zone"),
    "profile": Field(str, describe="a machine profile"),
    "timeout_seconds": Field(int, check=_between(10, 7 * 24 * 3600), describe="seconds"),
    "retries": Field(int, check=_between(0, 10), describe="a whole number from 0 to 10"),
    "publish": Field(list, check=schedule.check_publish,
                     describe='a list of {"table": <Publish table>, "name": <derived asset name>}'),
}
#: changing these changes what runs: the caller becomes the task's owner
RUNS_WHAT = {"code_asset_id", "version", "parameters", "publish"}


def run_model(r: orm.TaskRun, with_log: bool = False) -> dict:
    model = {
        "id": r.id,
        "task_id": r.task_id,
        "state": r.state,
        "reason": r.reason,
        "try_number": r.try_number,
        "engine_run_id": r.engine_run_id,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "duration_seconds": (r.ended_at - r.started_at).total_seconds() if r.ended_at else None,
        "published": r.published or [],
    }
    if with_log:
        model["log"] = r.log
    return model


def task_model(t: orm.Task, last_runs: list[orm.TaskRun] = ()) -> dict:
    return {
        "id": t.id,
        "space_id": t.space_id,
        "name": t.name,
        "owner": t.owner.name,
        "code_asset_id": t.version.code_asset_id,
        "version": t.version.number,
        "entry": t.version.entry,
        "parameters": t.parameters,
        "schedule": t.schedule,
        "timezone": t.timezone,
        "profile": t.profile,
        "timeout_seconds": t.timeout_seconds,
        "retries": t.retries,
        "publish": t.publish,
        "paused": t.paused,
        "paused_reason": t.paused_reason,
        # when the schedule fires next (a paused task's schedule fires not at all)
        "next_run_at": None if t.paused else schedule.next_run(t.schedule, t.timezone, utcnow()),
        "engine_dag_id": dag_id(t.id),
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "last_runs": [run_model(r) for r in last_runs],
    }


class TaskBase(TasksConfigMixin, APIHandler):
    @property
    def engine(self):
        return self.settings["engine"]

    def task_for(self, raw_id: str, action: str) -> tuple[orm.Task, orm.Space]:
        task_id = self.id_argument(raw_id, "task")
        task = self.db.get(orm.Task, task_id)
        if task is None:
            raise APIError(404, f"no task with id {task_id} among your spaces")
        try:
            space, _ = self.space_for(str(task.space_id), action)
        except APIError as e:
            if e.status_code == 404:
                raise APIError(404, f"no task with id {task_id} among your spaces")
            raise
        return task, space

    def last_runs(self, task_ids: list[int], n: int = 5) -> dict[int, list[orm.TaskRun]]:
        found: dict[int, list[orm.TaskRun]] = {i: [] for i in task_ids}
        if not task_ids:
            return found
        rows = self.db.scalars(
            select(orm.TaskRun).where(orm.TaskRun.task_id.in_(task_ids)).order_by(orm.TaskRun.id.desc())
        )
        for r in rows:
            if len(found[r.task_id]) < n:
                found[r.task_id].append(r)
        return found

    def apply(self, task: orm.Task, space: orm.Space, values: dict) -> None:
        """Set ``values`` on ``task``, checking what refers to other rows."""
        settings = self.spaces_settings
        if "profile" in values and values["profile"] not in settings.machine_profiles:
            raise APIError(422, f"no machine profile {values['profile']!r}: choose one of "
                                f"{sorted(settings.machine_profiles)}", {"profile": "unknown profile"})
        if "code_asset_id" in values or "version" in values:
            asset_id = values.get("code_asset_id", task.version.code_asset_id if task.version_id else None)
            asset = self.db.get(orm.CodeAsset, asset_id) if asset_id is not None else None
            if asset is None or asset.space_id != space.id:
                raise APIError(422, f"no Code Asset with id {asset_id} in space '{space.slug}': save "
                                    "the code as a Code Asset of this space first",
                               {"code_asset_id": "not a Code Asset of this space"})
            if not asset.versions:
                raise APIError(422, f"Code Asset {asset.name!r} has no versions", {"version": "none"})
            version = asset.versions[-1]
            if "version" in values:
                version = next((v for v in asset.versions if v.number == values["version"]), None)
                if version is None:
                    have = f"versions 1-{asset.versions[-1].number}"
                    raise APIError(422, f"Code Asset {asset.name!r} has no version {values['version']}: it has {have}",
                                   {"version": f"one of {have}"})
            task.version = version
            task.version_id = version.id
        for name in ("name", "parameters", "schedule", "timezone", "profile", "timeout_seconds", "retries", "publish"):
            if name in values:
                setattr(task, name, values[name].strip() if name == "name" else values[name])

    async def tell_engine(self, what, *args):
        """Best effort: the engine learns the change at its next parse anyway."""
        if not self.engine.configured:
            return
        try:
            await what(*args)
        except EngineError as e:
            log.info("engine not told (%s): it reads the change at its next parse", e.message)


class TasksHandler(TaskBase):
    """``/api/v1/spaces/{id}/tasks``"""

    async def get(self, raw_id):
        space, _ = self.space_for(raw_id, "read")
        tasks = list(self.db.scalars(select(orm.Task).where(orm.Task.space_id == space.id).order_by(orm.Task.id)))
        last = self.last_runs([t.id for t in tasks])
        self.write_json({"items": [task_model(t, last[t.id]) for t in tasks]})

    async def post(self, raw_id):
        fields = {**TASK_FIELDS, "name": Field(str, required=True, describe="the task's name"),
                  "code_asset_id": Field(int, required=True, describe="the id of a Code Asset of this space"),
                  "paused": Field(bool)}
        values = self.body_fields(fields)
        space, _ = self.space_for(raw_id, "edit", lock=True)
        user = self.current_db_user()
        task = orm.Task(
            space_id=space.id, owner_id=user.id, parameters={}, schedule=None, timezone="UTC",
            profile=space.profile, timeout_seconds=3600, retries=0, publish=[],
            paused=bool(values.pop("paused", False)), paused_reason="",
        )
        self.apply(task, space, values)
        task.name = values["name"].strip()
        self.db.add(task)
        try:
            self.db.flush()
        except IntegrityError:
            raise APIError(409, f"space '{space.slug}' already has a task named {task.name!r}: choose another name",
                           {"name": "taken in this space"})
        self.db.refresh(task)
        self.audit("task.create", "task", task.id, space_id=space.id, name=task.name, schedule=task.schedule,
                   version_id=task.version_id)
        self.write_json(task_model(task), status=201)


class TaskHandler(TaskBase):
    """``/api/v1/tasks/{id}``"""

    async def get(self, raw_id):
        task, _ = self.task_for(raw_id, "read")
        model = task_model(task, self.last_runs([task.id])[task.id])
        self.write_json(model)

    async def patch(self, raw_id):
        values = self.body_fields(TASK_FIELDS)
        task, space = self.task_for(raw_id, "edit")
        self.apply(task, space, values)
        if RUNS_WHAT & set(values):
            task.owner = self.current_db_user()
        try:
            self.db.flush()
        except IntegrityError:
            raise APIError(409, f"space '{space.slug}' already has a task named {values.get('name')!r}",
                           {"name": "taken in this space"})
        self.audit("task.update", "task", task.id, space_id=space.id, fields=sorted(values), owner=task.owner.name)
        self.write_json(task_model(task))

    async def delete(self, raw_id):
        task, space = self.task_for(raw_id, "edit")
        task_id = task.id
        self.db.delete(task)
        self.audit("task.delete", "task", task_id, space_id=space.id)
        self.commit()
        await self.tell_engine(self.engine.set_paused, task_id, True)
        self.set_status(204)
        self.finish()


class TaskActionHandler(TaskBase):
    """``/api/v1/tasks/{id}/run``, ``/pause``, ``/resume``"""

    def initialize(self, action: str):
        self.action = action

    async def post(self, raw_id):
        action = self.action
        task, space = self.task_for(raw_id, "edit")
        if action in ("pause", "resume"):
            task.paused = action == "pause"
            task.paused_reason = f"paused by {self.user_name}" if task.paused else ""
            self.audit(f"task.{action}", "task", task.id, space_id=space.id)
            model = task_model(task)
            self.commit()
            await self.tell_engine(self.engine.set_paused, task.id, task.paused)
            self.write_json(model)
            return
        # run now: refuse at once what the run-time check would refuse anyway
        _, decision = runs.owner_decision(self.db, task, self.spaces_settings.lineage_enforced)
        verdict = policy.may_run(decision, task.paused, task.paused_reason)
        if not verdict.allowed:
            raise APIError(403, f"task {task.name!r} cannot run: {verdict.reason}",
                           audit={"action": "task.run", "target_type": "task", "target_id": task.id})
        if not self.engine.configured:
            raise APIError(503, "no task engine is configured on this site (c.SpacesTasks.engine_url): ask an admin")
        task_id = task.id
        self.audit("task.trigger", "task", task_id, space_id=space.id)
        self.commit()
        try:
            reply = await self.engine.trigger(task_id, note=f"run now by {self.user_name}")
        except EngineError as e:
            if e.status == 404:
                raise APIError(409, "Airflow has not loaded this task yet (it reads new tasks within "
                                    "seconds): try again shortly")
            if e.status == 503:
                raise APIError(503, f"the task engine is not available now ({e.message}): try again shortly")
            raise APIError(502, f"the task engine refused to start the run: {e.message}")
        self.write_json({"task_id": task_id, "engine_run_id": reply.get("dag_run_id"), "state": reply.get("state")},
                        status=202)


class TaskRunsHandler(TaskBase):
    """``/api/v1/tasks/{id}/runs``"""

    async def get(self, raw_id):
        task, _ = self.task_for(raw_id, "read")
        query = select(orm.TaskRun).where(orm.TaskRun.task_id == task.id).order_by(orm.TaskRun.id.desc())
        self.paginate(query, run_model)


class RunBase(TaskBase):
    def run_for(self, raw_id, raw_run, action) -> tuple[orm.Task, orm.TaskRun]:
        task, _ = self.task_for(raw_id, action)
        run_id = self.id_argument(raw_run, "run")
        run = self.db.get(orm.TaskRun, run_id)
        if run is None or run.task_id != task.id:
            raise APIError(404, f"task {task.name!r} has no run with id {run_id}")
        return task, run



class TaskRunHandler(RunBase):
    """``/api/v1/tasks/{id}/runs/{run}``"""

    async def get(self, raw_id, raw_run):
        _, run = self.run_for(raw_id, raw_run, "read")
        self.write_json(run_model(run, with_log=True))


class TaskRunCancelHandler(RunBase):
    """``/api/v1/tasks/{id}/runs/{run}/cancel``"""

    async def post(self, raw_id, raw_run):
        task, run = self.run_for(raw_id, raw_run, "edit")
        if run.state != "running":
            raise APIError(409, f"run {run.id} is {run.state}: only a running run can be cancelled")
        self.audit("task.cancel", "task", task.id, run_id=run.id)
        engine_run_id, task_id = run.engine_run_id, task.id
        self.commit()
        try:
            await self.engine.cancel(task_id, engine_run_id)
        except EngineError as e:
            raise APIError(502, f"the task engine could not cancel the run: {e.message}")
        self.write_json({"run_id": run.id, "state": "cancelling"}, status=202)


# ---------------------------------------------------------------------------
# the engine's side


class EngineBase(TasksConfigMixin, APIHandler):
    async def prepare(self):
        await super().prepare()
        if not (self.is_service and self.user_name in self.tasks_config.engine_services):
            raise APIError(403, "only the task engine's components may call /api/v1/engine/")


class EngineTasksHandler(EngineBase):
    """``/api/v1/engine/tasks``"""

    async def get(self):
        rows = self.db.execute(
            select(orm.Task, orm.Space.slug).join(orm.Space, orm.Space.id == orm.Task.space_id).order_by(orm.Task.id)
        ).all()
        self.write_json({"tasks": [
            {
                "id": t.id, "dag_id": dag_id(t.id), "name": t.name, "space_id": t.space_id, "space_slug": slug,
                "owner": t.owner.name, "schedule": t.schedule, "timezone": t.timezone, "paused": t.paused,
                "retries": t.retries, "timeout_seconds": t.timeout_seconds,
                # the schedule starts here: no run for a slot before the task existed
                "created_at": t.created_at.replace(tzinfo=timezone.utc).isoformat(),
            }
            for t, slug in rows
        ]})


class EngineRunsHandler(EngineBase):
    """``/api/v1/engine/runs``"""

    async def post(self):
        body = self.body_fields({
            "task_id": Field(int, required=True),
            "engine_run_id": Field(str, required=True, max_length=250),
            "try_number": Field(int),
        })
        task = self.db.get(orm.Task, body["task_id"])
        if task is None:
            raise APIError(404, f"no task with id {body['task_id']}: it was deleted")
        try:
            started = runs.start(
                self.db, self.databases, self.tasks_config, task, body["engine_run_id"][:250],
                body.get("try_number", 1), self.spaces_settings.lineage_enforced, self.user_name,
            )
        except SandboxError as e:
            raise APIError(503, f"the run cannot start: {e}")
        if not started.verdict.allowed:
            # the refusal is recorded: commit it, then answer 403 with the reason
            run_id = started.run.id
            self.commit()
            raise APIError(403, f"run {run_id} refused: {started.verdict.reason}")
        self.write_json({
            "run_id": started.run.id, "argv": started.argv, "env": started.env, "cwd": started.cwd,
            "timeout_seconds": task.timeout_seconds, "summary": started.verdict.reason,
        }, status=201)


class EngineRunLogHandler(EngineBase):
    """``/api/v1/engine/runs/{run}/log``: the output so far of a running run."""

    async def post(self, raw_run):
        body = self.body_fields({"log": Field(str, required=True, multiline=True, allow_empty=True,
                                              max_length=LOG_CHARS)})
        run = self.db.get(orm.TaskRun, self.id_argument(raw_run, "run"))
        if run is None:
            raise APIError(404, f"no run with id {raw_run}")
        if run.state == "running":
            run.log = body["log"][-self.tasks_config.max_log_bytes:]
        self.set_status(204)
        self.finish()


#: the end of an attempt, as the engine reports it
FINISH_FIELDS = {
    "state": Field(str, required=True, check=lambda v: None if v in RUN_STATES else f"one of {RUN_STATES}"),
    "log": Field(str, multiline=True, allow_empty=True, max_length=LOG_CHARS),
    "returncode": Field(int, nullable=True),
}


class EngineRunFinishHandler(EngineBase):
    """``/api/v1/engine/runs/{run}/finish``"""

    async def post(self, raw_run):
        body = self.body_fields(FINISH_FIELDS)
        run = self.db.get(orm.TaskRun, self.id_argument(raw_run, "run"))
        if run is None or run.task_id is None:  # a YAML DAG step's run ends at engine/dag-runs
            raise APIError(404, f"no run with id {raw_run}")
        if run.state != "running":
            self.write_json(run_model(run))
            return
        task = self.db.get(orm.Task, run.task_id)
        cfg = self.tasks_config
        runs.finish(self.db, self.databases, run, task, body["state"], body.get("log", ""), body.get("returncode"),
                    cfg.max_log_bytes, cfg, self.user_name)
        run_id, task_id = run.id, task.id
        self.commit()
        if body["state"] == "success" and task.publish:
            self._publish(task_id, run_id)
        run = self.db.get(orm.TaskRun, run_id)
        self.write_json(run_model(run))

    def _publish(self, task_id: int, run_id: int) -> None:
        """All of the run's outputs are published in one transaction, or none; a
        failure turns the run into a failed one, with the reason."""
        prefix = SpaceDatabases(config=self.spaces_settings.config).snapshot_prefix
        try:
            with self.store.transaction() as db:
                task, run = db.get(orm.Task, task_id), db.get(orm.TaskRun, run_id)
                ids = runs.publish_outputs(db, self.databases, task, run, self.spaces_settings.lineage_enforced, prefix)
                self.audit_in(db, "task.publish", "task", task_id, run_id=run_id, assets=ids)
        except (PublishError, codeasset.CodeAssetError) as e:
            with self.store.transaction() as db:
                run = db.get(orm.TaskRun, run_id)
                run.state, run.reason = "failed", f"the run succeeded but its outputs were not published: {e.message}"
                self.audit_in(db, "task.publish", "task", task_id, outcome="failed", run_id=run_id, reason=e.message)

    def audit_in(self, db, action, target_type, target_id, outcome="ok", **detail):
        from ...store import audit

        audit(db, self.user_name, action, target_type, target_id, outcome, **detail)


default_handlers = [
    (r"api/v1/spaces/([^/]+)/tasks", TasksHandler),
    (r"api/v1/tasks/([^/]+)", TaskHandler),
    (r"api/v1/tasks/([^/]+)/run", TaskActionHandler, {"action": "run"}),
    (r"api/v1/tasks/([^/]+)/pause", TaskActionHandler, {"action": "pause"}),
    (r"api/v1/tasks/([^/]+)/resume", TaskActionHandler, {"action": "resume"}),
    (r"api/v1/tasks/([^/]+)/runs", TaskRunsHandler),
    (r"api/v1/tasks/([^/]+)/runs/([^/]+)", TaskRunHandler),
    (r"api/v1/tasks/([^/]+)/runs/([^/]+)/cancel", TaskRunCancelHandler),
    (r"api/v1/engine/tasks", EngineTasksHandler),
    (r"api/v1/engine/runs", EngineRunsHandler),
    (r"api/v1/engine/runs/([^/]+)/log", EngineRunLogHandler),
    (r"api/v1/engine/runs/([^/]+)/finish", EngineRunFinishHandler),
]
