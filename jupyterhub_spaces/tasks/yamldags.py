"""The YAML DAGs of a space, read from its editors' homes.

Each owner's or editor's home in a space may hold a ``dags/`` folder of ``*.yaml`` /
``*.yml`` files (see :mod:`jupyterhub_spaces.airflow.spec` for what a file holds). The
service reads them with the Code Assets' link-safe reader (never following a link,
bounded in size and count: :func:`~.codeasset.read_top_files`), checks each file on
its own, and so answers both the space's listing (every file with its DAGs or its
error) and the engine (only the DAGs that passed). A member's DAGs run as that member.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import orm, policy
from ..airflow import spec
from ..policy.tasks import RUN_ACTION
from . import codeasset, schedule
from .config import SpacesTasks

#: the folder of a member's space home that holds their YAML DAGs
DAGS_FOLDER = "dags"
SUFFIXES = (".yaml", ".yml")
MAX_FILES = 50
#: the file of a member's ``dags/`` folder holding the space's variables for their runs
VARIABLES_FILE = "variables.yaml"


@dataclass
class DagFile:
    """One YAML file of one member's ``dags/`` folder: its DAGs, or why none."""

    space_id: int
    owner: str
    owner_id: int
    file: str
    dags: dict = field(default_factory=dict)
    error: str = ""

    def definitions(self) -> list[dict]:
        return [
            {"dag_id": spec.dag_id(self.space_id, self.owner_id, name), "name": name, "space_id": self.space_id,
             "owner": self.owner, "owner_id": self.owner_id, "file": self.file, "spec": dag}
            for name, dag in self.dags.items()
        ]

    def model(self) -> dict:
        return {
            "owner": self.owner,
            "file": posixpath.join(DAGS_FOLDER, self.file),
            "error": self.error or None,
            "dags": [
                {"name": d["name"], "dag_id": d["dag_id"], "schedule": d["spec"].get("schedule"),
                 "timezone": d["spec"].get("timezone") or "UTC",
                 "steps": [{"name": n, "operator": s["operator"], "dependencies": s.get("dependencies", [])}
                           for n, s in d["spec"]["tasks"].items()]}
                for d in self.definitions()
            ],
        }


def check_file(space_id: int, data: bytes) -> dict:
    """The DAGs of one file's bytes, checked (:class:`~.spec.SpecError` otherwise),
    schedules and time zones included."""
    dags = spec.check(spec.load(data), space_id)
    for name, dag in dags.items():
        if dag.get("schedule") is not None:
            problem = schedule.check_cron(dag["schedule"])
            if problem:
                raise spec.SpecError(f"{name}.schedule: {problem}")
        if "timezone" in dag:
            problem = schedule.check_timezone(dag["timezone"])
            if problem:
                raise spec.SpecError(f"{name}.timezone: {problem}")
    return dags


def home_of(cfg: SpacesTasks, user: str, space_id: int) -> str:
    return cfg.space_home_template.format(username=user, space=policy.server_name(space_id))


def runners(db: Session, space_id: int) -> list[tuple[int, str]]:
    """(user id, name) of the members whose role runs tasks (owners and editors)."""
    rows = db.execute(
        select(orm.User.id, orm.User.name, orm.Collaborator.role)
        .join(orm.Collaborator, orm.Collaborator.user_id == orm.User.id)
        .where(orm.Collaborator.space_id == space_id)
        .order_by(orm.User.name)
    ).all()
    return [(uid, name) for uid, name, role in rows if policy.allowed(policy.Role(role), RUN_ACTION)]


def member_files(cfg: SpacesTasks, space_id: int, owner_id: int, owner: str) -> list[DagFile]:
    """Every YAML file of one member's ``dags/`` folder in one space, each checked on
    its own: one bad file never hides the others."""
    if not cfg.space_home_template:
        return []
    found, problems = codeasset.read_top_files(
        home_of(cfg, owner, space_id), DAGS_FOLDER, SUFFIXES, spec.MAX_FILE_BYTES, MAX_FILES
    )
    files = [DagFile(space_id, owner, owner_id, name, error=problem) for name, problem in problems.items()]
    variables_doc = found.pop(VARIABLES_FILE, None)
    if variables_doc is not None:
        try:
            check_variables(variables_doc)
        except spec.SpecError as e:
            files.append(DagFile(space_id, owner, owner_id, VARIABLES_FILE, error=str(e)))
    for name, data in found.items():
        item = DagFile(space_id, owner, owner_id, name)
        try:
            item.dags = check_file(space_id, data)
        except spec.SpecError as e:
            item.error = str(e)
        files.append(item)
    dag_ids: dict[str, str] = {}
    for item in sorted(files, key=lambda f: f.file):
        for name in list(item.dags):
            if name in dag_ids:
                item.error = f"DAG {name!r} is defined in {dag_ids[name]} too: give each DAG its own name"
                item.dags = {}
                break
        for name in item.dags:
            dag_ids[name] = posixpath.join(DAGS_FOLDER, item.file)
    return sorted(files, key=lambda f: f.file)


def space_files(db: Session, cfg: SpacesTasks, space_id: int) -> list[DagFile]:
    return [f for uid, name in runners(db, space_id) for f in member_files(cfg, space_id, uid, name)]


def all_definitions(db: Session, cfg: SpacesTasks) -> list[dict]:
    """The checked DAGs of every space, for the engine."""
    if not cfg.space_home_template:
        return []
    out = []
    for (space_id,) in db.execute(select(orm.Space.id).order_by(orm.Space.id)).all():
        for item in space_files(db, cfg, space_id):
            out.extend(item.definitions())
    return out


def check_variables(data: bytes) -> dict[str, str]:
    """The variables of a ``variables.yaml`` (a map of names to text, numbers or
    true/false), as text; :class:`~.spec.SpecError` otherwise."""
    doc = spec.load(data)
    if doc is None:
        return {}
    if not isinstance(doc, dict) or len(doc) > 200:
        raise spec.SpecError(f"{VARIABLES_FILE} must map at most 200 variable names to values")
    out = {}
    for name, value in doc.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", name):
            raise spec.SpecError(f"{VARIABLES_FILE}: variable name {str(name)[:80]!r} must be letters, digits, _")
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, (str, int, float)) or len(str(value)) > 10000:
            raise spec.SpecError(f"{VARIABLES_FILE}: variable {name!r} must be text, a number or true/false")
        out[name] = str(value)
    return out


def variables(cfg: SpacesTasks, space: orm.Space, owner: str) -> dict[str, str]:
    """The variables a run of ``owner`` in ``space`` reads: the space's own (``id``,
    ``slug``, ``name``) and those of the owner's ``dags/variables.yaml``."""
    values: dict[str, str] = {}
    if cfg.space_home_template:
        found, _ = codeasset.read_top_files(home_of(cfg, owner, space.id), DAGS_FOLDER, (VARIABLES_FILE,),
                                            spec.MAX_FILE_BYTES, MAX_FILES)
        if VARIABLES_FILE in found:
            try:
                values = check_variables(found[VARIABLES_FILE])
            except spec.SpecError:
                values = {}  # its error shows in the space's DAG listing
    return {**values, "id": str(space.id), "slug": space.slug, "name": space.display_name}


class StepNotFound(LookupError):
    """The step a run was asked for is not (or no longer) in the member's YAML."""


def find_step(cfg: SpacesTasks, space_id: int, owner_id: int, owner: str, file: str, dag: str, step: str) -> dict:
    """The step ``step`` of DAG ``dag`` in ``file`` of the member's ``dags/`` folder,
    read and checked again now (the file may have changed since Airflow parsed it)."""
    for item in member_files(cfg, space_id, owner_id, owner):
        if item.file != file:
            continue
        if item.error:
            raise StepNotFound(f"{DAGS_FOLDER}/{file} of {owner} is not valid now: {item.error}")
        if dag in item.dags and step in item.dags[dag]["tasks"]:
            defaults = item.dags[dag].get("default_args", {})
            return {**defaults, **item.dags[dag]["tasks"][step]}
        break
    raise StepNotFound(f"no step {step!r} of DAG {dag!r} in {DAGS_FOLDER}/{file} of {owner} now")
