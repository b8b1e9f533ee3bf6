"""What the service does when the engine starts and ends one step of a YAML DAG.

A step runs exactly like a Task's run (:mod:`.runs`): the owner's access to the space is
decided *now* (:func:`jupyterhub_spaces.policy.may_run`), a refusal is recorded with its
reason, an allowed run gets its own database login and working directory and runs in
the owner's session sandbox, and its end revokes the login. The step itself is read
again from the owner's YAML at this moment (:func:`.yamldags.find_step`):

- ``code_asset``: the named Code Asset of the space (its latest version, or the one
  given) runs as a Task's code runs;
- ``sql``: a fixed runner of ours executes the step's SQL on the space's Collaborative
  or Publish database, with the run's own login (which the engine reads through the
  spaces secrets backend: :mod:`jupyterhub_spaces.airflow.secrets_backend`);
- ``publish``: the Publish table becomes a derived asset through the same
  :func:`~jupyterhub_spaces.databases.publish.publish` a manual publish uses, in the
  service, at once (no process, no login).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import orm, policy
from ..databases import DatabaseBackend
from ..databases.base import Credentials
from ..databases.publish import PublishError, publish
from ..store import audit, decide, space_query
from ..utils import utcnow
from . import runs, yamldags
from .config import SpacesTasks

#: the SQL step's runner (our code, run in the owner's sandbox with the run's login):
#: the statements of ``step.sql`` in one transaction
SQL_RUNNER = """\
import os
from sqlalchemy import create_engine
sql = open("step.sql", encoding="utf-8").read()
engine = create_engine(os.environ["SPACES_SQL_URL"])
raw = engine.raw_connection()
try:
    if engine.dialect.name == "sqlite":
        # executescript runs outside any transaction of the driver's: make one
        con = raw.driver_connection
        try:
            con.executescript("BEGIN;\\n" + sql + "\\n;COMMIT;")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
    else:
        raw.cursor().execute(sql)
        raw.commit()
finally:
    raw.close()
print("the SQL ran on", engine.url.render_as_string(hide_password=True))
"""

class StepError(ValueError):
    """The engine's request names no runnable step; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class StepStart:
    run: orm.TaskRun
    allowed: bool
    reason: str
    kind: str = ""
    argv: list[str] | None = None
    env: dict | None = None
    cwd: str = ""
    timeout_seconds: int = 3600
    conn_id: str = ""


def start_step(
    db: Session, dbs: DatabaseBackend, cfg: SpacesTasks, space_id: int, owner_id: int, file: str, dag: str,
    step_name: str, engine_run_id: str, try_number: int, lineage_enforced: bool, actor: str,
    snapshot_prefix: str,
) -> StepStart:
    """Decide and, when allowed, prepare (or, for ``publish``, do) one step's run."""
    from ..airflow import spec

    space = db.scalar(space_query().where(orm.Space.id == space_id))
    owner = db.get(orm.User, owner_id)
    if space is None or owner is None:
        raise StepError(404, f"no space {space_id} or member {owner_id}: the DAG's space or owner is gone")
    decision = decide(db, [owner.name], space, lineage_enforced=lineage_enforced)[owner.name]
    verdict = policy.may_run(decision)
    allowed, reason = verdict.allowed, verdict.reason
    step: dict = {}
    if allowed:
        try:
            step = yamldags.find_step(cfg, space.id, owner.id, owner.name, file, dag, step_name)
        except yamldags.StepNotFound as e:
            allowed, reason = False, str(e)
    run = orm.TaskRun(
        task_id=None, space_id=space.id, owner_id=owner.id, dag_id=spec.dag_id(space.id, owner.id, dag),
        step=step_name, engine_run_id=engine_run_id, try_number=try_number,
        state="running" if allowed else "refused", reason="" if allowed else reason,
        ended_at=None if allowed else utcnow(),
    )
    db.add(run)
    db.flush()
    detail = dict(dag_id=run.dag_id, step=step_name, run_id=run.id, owner=owner.name, mode=verdict.mode.value)
    if not allowed:
        audit(db, actor, "dag.run", "space", space.id, outcome="refused", reason=reason,
              missing=[{"kind": m.target.kind, "id": m.target.id, "name": m.target.name, "reason": m.reason}
                       for m in verdict.missing], **detail)
        return StepStart(run, False, reason)
    kind = step["operator"]
    timeout = int(step.get("timeout_seconds", 3600))
    if kind == "publish":
        return _publish(db, dbs, space, owner, decision, run, step, dag, actor, snapshot_prefix, detail)
    argv = None
    if kind == "code_asset":
        version = _version(db, space, step)  # before any login is issued
    workdir, creds, env = runs.prepare_run(db, dbs, cfg, run, space, owner.name, decision)
    if kind == "code_asset":
        from . import codeasset

        codeasset.restore(codeasset.files_of(db, version), workdir, "")
        parameters = step.get("parameters", {})
        env.update({"SPACES_TASK_PARAMETERS": json.dumps(parameters), **creds.env()})
        argv = runs.command(cfg, version.entry, parameters)
    else:  # sql: the runner gets the one database the step names, from the secrets backend
        with open(os.path.join(workdir, "step.sql"), "w", encoding="utf-8") as f:
            f.write(step["sql"])
        argv = [cfg.python, "-c", SQL_RUNNER]
    argv = runs.wrap(cfg, owner.name, space.id, run.id, workdir, creds, argv)
    audit(db, actor, "dag.run", "space", space.id, outcome="started", login=creds.login, **detail)
    return StepStart(run, True, verdict.reason, kind, argv, env, workdir, timeout, step.get("conn_id", ""))


def _version(db: Session, space: orm.Space, step: dict) -> orm.CodeAssetVersion:
    asset = db.scalar(select(orm.CodeAsset).where(orm.CodeAsset.space_id == space.id,
                                                  orm.CodeAsset.name == step["code_asset"]))
    if asset is None or not asset.versions:
        raise StepError(409, f"no Code Asset named {step['code_asset']!r} in space '{space.slug}': save the code "
                             "as a Code Asset of this space first")
    if "version" not in step:
        return asset.versions[-1]
    version = next((v for v in asset.versions if v.number == step["version"]), None)
    if version is None:
        raise StepError(409, f"Code Asset {asset.name!r} has no version {step['version']}: it has versions "
                             f"1-{asset.versions[-1].number}")
    return version


def _publish(db, dbs, space, owner, decision, run, step, dag, actor, snapshot_prefix, detail) -> StepStart:
    try:
        with db.begin_nested():
            asset = publish(db, dbs, space, owner, decision.role, step["table"], step["name"],
                            f"published by YAML DAG {dag!r} (run {run.id})", snapshot_prefix=snapshot_prefix)
        run.state, run.published = "success", [asset.id]
        run.log = f"published table {step['table']} as derived asset {asset.id} ({step['name']})\n"
    except PublishError as e:
        run.state, run.reason = "failed", f"not published: {e.message}"
        run.log = run.reason + "\n"
    run.ended_at = utcnow()
    audit(db, actor, "dag.run", "space", space.id, outcome=run.state, published=run.published or [],
          reason=run.reason, **detail)
    return StepStart(run, True, run.reason, "publish")


def finish_step(db: Session, dbs: DatabaseBackend, run: orm.TaskRun, state: str, log_text: str,
                returncode: int | None, cfg: SpacesTasks, actor: str) -> None:
    """The end of a step's run: its login revoked, its output kept, audited."""
    owner = db.get(orm.User, run.owner_id)
    revoked = runs.end_run(db, dbs, run, run.space_id, owner.name, state, log_text, returncode,
                           cfg.max_log_bytes, cfg)
    audit(db, actor, "dag.run", "space", run.space_id, outcome=state, dag_id=run.dag_id, step=run.step,
          run_id=run.id, returncode=returncode, credentials_revoked=revoked)


def credentials(db: Session, dbs: DatabaseBackend, run: orm.TaskRun) -> Credentials:
    """The database credentials of a running run: those issued at its start (issued
    again, with a new password, only if this service restarted meanwhile, and only
    while its owner may still run it: :class:`StepError` otherwise)."""
    creds = runs.ISSUED.get(run.id)
    if creds is None:
        from ..databases import space_data
        from .identity import run_identity

        owner = db.get(orm.User, run.owner_id)
        space = db.scalar(space_query().where(orm.Space.id == run.space_id))
        decision = decide(db, [owner.name], space)[owner.name]
        if not policy.may_run(decision).allowed:
            raise StepError(403, f"run {run.id}'s owner may no longer run it: {policy.may_run(decision).reason}")
        role = decision.role
        creds = runs.ISSUED[run.id] = dbs.issue(space_data(db, space), run_identity(owner.name, run.id), role)
    return creds
