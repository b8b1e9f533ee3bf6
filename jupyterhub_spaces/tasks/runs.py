"""What the service does when the engine starts and ends a run of a Task.

:func:`start` asks the policy (:func:`jupyterhub_spaces.policy.may_run`) with the
owner's access decision *now*; a refusal is recorded as a run with its reason (and the
missing subscriptions) and audited. An allowed run gets database credentials of its
own (a login for ``<owner>/run-<id>``, with the owner's role: never the owner's
session login, so ending the run leaves the owner's session alone), a private working
directory holding its Code Asset version's files, and the command and environment
the engine runs. :func:`finish` revokes the credentials, keeps the output's end with
the run and removes the working directory; publishing the run's outputs is the
caller's next transaction (:func:`publish_outputs`).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import orm, policy
from ..databases import DatabaseBackend, space_data
from ..databases.publish import publish
from ..store import audit, decide, space_query
from ..utils import utcnow
from . import codeasset
from .config import SpacesTasks
from .identity import new_run_token, run_identity

#: the database credentials of running runs, by run id, as this service process issued
#: them (a run's secrets-backend reads get these, never a new password)
ISSUED: dict = {}


@dataclass
class Started:
    run: orm.TaskRun
    verdict: policy.RunVerdict
    argv: list[str] | None = None
    env: dict | None = None
    cwd: str = ""


def owner_decision(db: Session, task: orm.Task, lineage_enforced: bool) -> tuple[orm.Space, policy.Decision]:
    space = db.scalar(space_query().where(orm.Space.id == task.space_id))
    return space, decide(db, [task.owner.name], space, lineage_enforced=lineage_enforced)[task.owner.name]


def start(
    db: Session,
    dbs: DatabaseBackend,
    cfg: SpacesTasks,
    task: orm.Task,
    engine_run_id: str,
    try_number: int,
    lineage_enforced: bool,
    actor: str,
) -> Started:
    """Decide and, when allowed, prepare one run of ``task`` (see the module doc)."""
    space, decision = owner_decision(db, task, lineage_enforced)
    verdict = policy.may_run(decision, task.paused, task.paused_reason)
    run = orm.TaskRun(
        task_id=task.id,
        space_id=task.space_id,
        owner_id=task.owner_id,
        engine_run_id=engine_run_id,
        try_number=try_number,
        state="running" if verdict.allowed else "refused",
        reason="" if verdict.allowed else verdict.reason,
        ended_at=None if verdict.allowed else utcnow(),
    )
    db.add(run)
    db.flush()
    detail = dict(
        task=task.name, run_id=run.id, engine_run_id=engine_run_id, owner=task.owner.name,
        mode=verdict.mode.value, space_id=space.id,
    )
    if not verdict.allowed:
        audit(
            db, actor, "task.run", "task", task.id, outcome="refused", reason=verdict.reason,
            missing=[{"kind": m.target.kind, "id": m.target.id, "name": m.target.name, "reason": m.reason}
                     for m in verdict.missing],
            **detail,
        )
        return Started(run, verdict)

    workdir, creds, env = prepare_run(db, dbs, cfg, run, space, task.owner.name, decision)
    codeasset.restore(codeasset.files_of(db, task.version), workdir, "")
    env.update({
        "SPACES_TASK_ID": str(task.id),
        "SPACES_TASK_PARAMETERS": json.dumps(task.parameters or {}),
        **creds.env(),
    })
    argv = wrap(cfg, task.owner.name, space.id, run.id, workdir, creds,
                command(cfg, task.version.entry, task.parameters or {}))
    audit(db, actor, "task.run", "task", task.id, outcome="started", login=creds.login, **detail)
    return Started(run, verdict, argv, env, workdir)


def prepare_run(db: Session, dbs: DatabaseBackend, cfg: SpacesTasks, run: orm.TaskRun, space: orm.Space,
                owner: str, decision: policy.Decision):
    """What every allowed run gets: its private working directory, database
    credentials of its own (with the owner's role) and its base environment, holding
    the run's own credential for the service's run endpoints (its space's
    connections and variables, see :mod:`jupyterhub_spaces.service.handlers.dags`)."""
    workdir = os.path.join(cfg.run_root, f"run-{run.id}")
    os.makedirs(workdir, mode=0o700)
    data = space_data(db, space)
    dbs.prepare(data)  # idempotent: the space may never have been activated
    creds = ISSUED[run.id] = dbs.issue(data, run_identity(owner, run.id), decision.role)
    token, run.token_hash = new_run_token(run.id)
    env = {
        "HOME": workdir,
        "PATH": os.path.dirname(cfg.python) + ":/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "SPACES_SPACE_ID": str(space.id),
        "SPACES_SPACE": space.slug,
        "SPACES_TASK_RUN_ID": str(run.id),
        "SPACES_ACCESS_MODE": decision.mode.value,
        "SPACES_RUN_TOKEN": token,
    }
    return workdir, creds, env


def wrap(cfg: SpacesTasks, owner: str, space_id: int, run_id: int, workdir: str, creds, argv: list[str]) -> list[str]:
    """``argv`` as the owner's own account in the session sandbox (or not at all)."""
    if not cfg.isolate:
        return argv
    from .sandbox import sandboxed

    return sandboxed(cfg, owner, space_id, run_id, workdir, creds, argv)


def command(cfg: SpacesTasks, entry: str, parameters: dict) -> list[str]:
    """The command of a run: papermill for a notebook (its output notebook beside it),
    the script itself otherwise (its parameters in ``$SPACES_TASK_PARAMETERS``)."""
    if entry.endswith(".ipynb"):
        argv = [cfg.python, "-m", "papermill", "--log-output", "--no-progress-bar", entry, "output.ipynb"]
        for name, value in sorted(parameters.items()):
            # -r keeps a string as it is; -p reads numbers and True/False as such
            argv += ["-r", name, value] if isinstance(value, str) else ["-p", name, str(value)]
        return argv
    return [cfg.python, entry]


def finish(
    db: Session,
    dbs: DatabaseBackend,
    run: orm.TaskRun,
    task: orm.Task,
    state: str,
    log_text: str,
    returncode: int | None,
    max_log: int,
    cfg: SpacesTasks,
    actor: str,
) -> None:
    """Record the end of ``run``, revoke its credentials, remove its working directory."""
    revoked = end_run(db, dbs, run, task.space_id, task.owner.name, state, log_text, returncode, max_log, cfg)
    audit(
        db, actor, "task.run", "task", task.id, outcome=state, run_id=run.id, returncode=returncode,
        credentials_revoked=revoked, space_id=task.space_id,
    )


def end_run(db: Session, dbs: DatabaseBackend, run: orm.TaskRun, space_id: int, owner: str, state: str,
            log_text: str, returncode: int | None, max_log: int, cfg: SpacesTasks) -> bool:
    """The end of any run: its database login revoked (returns whether one was), its
    state, output and reason kept, its working directory gone. The run's own
    credential dies with it (the run endpoints answer only running runs)."""
    ISSUED.pop(run.id, None)
    revoked = dbs.revoke(space_id, run_identity(owner, run.id))
    run.state = state
    run.ended_at = utcnow()
    run.log = log_text[-max_log:]
    if state != "success" and not run.reason:
        run.reason = "cancelled" if state == "cancelled" else f"the command exited with {returncode}"
    shutil.rmtree(os.path.join(cfg.run_root, f"run-{run.id}"), ignore_errors=True)
    return revoked


def publish_outputs(
    db: Session, dbs: DatabaseBackend, task: orm.Task, run: orm.TaskRun, lineage_enforced: bool, snapshot_prefix: str
) -> list[int]:
    """Publish the Task's Publish tables as derived assets, all in ``db``'s transaction
    (all or none), as the owner with the owner's access now, through the same
    :func:`~jupyterhub_spaces.databases.publish.publish` a manual publish uses."""
    if not task.publish:
        return []
    space, decision = owner_decision(db, task, lineage_enforced)
    if not decision.can_activate:
        raise codeasset.CodeAssetError(403, f"not published: the task's owner is {decision.reason}")
    ids = []
    for item in task.publish:
        asset = publish(
            db, dbs, space, task.owner, decision.role, item["table"], item["name"],
            f"published by task {task.name!r} (run {run.id})", snapshot_prefix=snapshot_prefix,
        )
        ids.append(asset.id)
    run.published = ids
    return ids


def pause_owned_tasks(db: Session, space_id: int, user_id: int, reason: str) -> list[int]:
    """Pause every task of ``user_id`` in ``space_id`` (its owner left the space);
    returns their ids. The run-time check refuses their runs from now on."""
    tasks = db.scalars(
        select(orm.Task).where(orm.Task.space_id == space_id, orm.Task.owner_id == user_id, orm.Task.paused.is_(False))
    ).all()
    for task in tasks:
        task.paused, task.paused_reason = True, reason
    return [t.id for t in tasks]
