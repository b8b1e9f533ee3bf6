"""The YAML DAGs of a space: their strict schema, and the dag-factory configuration
built from a checked one.

Pure (PyYAML and jsonschema only, no Airflow, no hub): the spaces service checks each
file of a space's ``dags/`` folder with it (and shows the errors in the space), and
the DAG processor checks again what the service hands it before dag-factory sees it.

A file maps DAG names to DAGs; a DAG's ``tasks`` map step names to steps, each with an
``operator`` among exactly :data:`OPERATORS` (ours: a Code Asset version, SQL against
the space's own Collaborative or Publish database, publishing a Publish table). Nothing
in a file can name Python: no other operator, no callable, no import path, no
``!!python`` tag (the loader is PyYAML's safe one, and refuses aliases too, so a small
file cannot expand into a huge one), no key the schema does not list.
"""

from __future__ import annotations

import re

import jsonschema
import yaml

#: step kinds -> our operator classes (the only classes dag-factory is given)
OPERATORS = {
    "code_asset": "jupyterhub_spaces.airflow.steps.CodeAssetStep",
    "sql": "jupyterhub_spaces.airflow.steps.SQLStep",
    "publish": "jupyterhub_spaces.airflow.steps.PublishStep",
}
#: the databases a SQL step may name (never the Asset database: it is read-only data)
SQL_DATABASES = ("collaborative", "publish")
#: every database a run may read through the secrets backend
DATABASES = ("asset", "collaborative", "publish")
MAX_FILE_BYTES = 256 * 1024
MAX_DAGS_PER_FILE = 20
MAX_STEPS = 50
NAME = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
#: keys dag-factory or Airflow would turn into Python (callables, imports, files of code)
CODE_KEYS = re.compile(
    r"(callable|callback|decorator|macros|filters|import|_fn$|_fn_|check_|response_check|"
    r"template_searchpath|doc_md_file_path|python|class|module|hook|executor_config|jinja)",
    re.I,
)

_SCALAR = {"type": ["string", "number", "boolean"]}
_COMMON = {
    "operator": {"enum": sorted(OPERATORS)},
    "dependencies": {"type": "array", "items": {"type": "string", "pattern": NAME}, "maxItems": MAX_STEPS,
                     "uniqueItems": True},
    "retries": {"type": "integer", "minimum": 0, "maximum": 10},
    "timeout_seconds": {"type": "integer", "minimum": 10, "maximum": 7 * 24 * 3600},
}
STEP_SCHEMAS = {
    "code_asset": {
        "type": "object",
        "required": ["operator", "code_asset"],
        "additionalProperties": False,
        "properties": {
            **_COMMON,
            "code_asset": {"type": "string", "minLength": 1, "maxLength": 200},
            "version": {"type": "integer", "minimum": 1},
            "parameters": {
                "type": "object", "maxProperties": 100,
                "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
                "additionalProperties": _SCALAR,
            },
        },
    },
    "sql": {
        "type": "object",
        "required": ["operator", "conn_id", "sql"],
        "additionalProperties": False,
        "properties": {
            **_COMMON,
            "conn_id": {"type": "string", "pattern": r"^space_[0-9]{1,12}_[a-z]{1,20}$"},
            "sql": {"type": "string", "minLength": 1, "maxLength": 100_000},
        },
    },
    "publish": {
        "type": "object",
        "required": ["operator", "table", "name"],
        "additionalProperties": False,
        "properties": {
            **_COMMON,
            "table": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$"},
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
        },
    },
}
DAG_SCHEMA = {
    "type": "object",
    "required": ["tasks"],
    "additionalProperties": False,
    "properties": {
        "description": {"type": "string", "maxLength": 500},
        "schedule": {"type": ["string", "null"], "maxLength": 100},
        "timezone": {"type": "string", "maxLength": 64},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 50}, "maxItems": 10},
        # only what cannot point at code
        "default_args": {
            "type": "object", "additionalProperties": False,
            "properties": {"retries": _COMMON["retries"], "timeout_seconds": _COMMON["timeout_seconds"]},
        },
        "tasks": {
            "type": "object", "minProperties": 1, "maxProperties": MAX_STEPS,
            "propertyNames": {"pattern": NAME},
            # each step is checked against its kind's schema afterwards
            "additionalProperties": {"type": "object", "required": ["operator"]},
        },
    },
}
FILE_SCHEMA = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": MAX_DAGS_PER_FILE,
    "propertyNames": {"pattern": NAME},
    "additionalProperties": DAG_SCHEMA,
}


class SpecError(ValueError):
    """A YAML DAG file that cannot be used; the message says where and why."""


#: PyYAML's safe loader (no Python tags), libyaml's when PyYAML was built with it
#: (about twenty times faster: the service checks every space's files every few seconds)
_SAFE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: bytes | str) -> object:
    """The document of one YAML file (safe loading only, no aliases), or
    :class:`SpecError`."""
    if len(text) > MAX_FILE_BYTES:
        raise SpecError(f"the file holds {len(text)} bytes: a YAML DAG file holds at most {MAX_FILE_BYTES}")
    try:
        # aliases are refused before anything is built, so a small file cannot expand
        # into a huge one
        for event in yaml.parse(text, Loader=_SAFE):
            if isinstance(event, yaml.AliasEvent):
                raise SpecError(f"line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not "
                                "allowed: write the value out")
        return yaml.load(text, Loader=_SAFE)  # noqa: S506 (a safe loader)
    except yaml.constructor.ConstructorError as e:
        where = f"line {e.problem_mark.line + 1}: " if e.problem_mark else ""
        raise SpecError(f"{where}{e.problem}: only plain YAML (maps, lists, text, numbers) is allowed, "
                        "never a Python tag") from None
    except yaml.YAMLError as e:
        raise SpecError(f"not valid YAML: {e}") from None


def _where(path) -> str:
    return ".".join(str(p) for p in path) or "the file"


def _code_keys(node, path=()) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "parameters" and path:
                continue  # a Code Asset's parameter names are the user's own words
            if isinstance(key, str) and CODE_KEYS.search(key):
                raise SpecError(
                    f"{_where((*path, key))}: {key!r} would name Python code; a YAML DAG runs only "
                    f"steps of kind {', '.join(sorted(OPERATORS))} (save code as a Code Asset and "
                    "run it with operator: code_asset)"
                )
            _code_keys(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _code_keys(value, (*path, i))


#: one validator per schema, made once
_VALIDATORS: dict[int, jsonschema.Draft202012Validator] = {}


def _schema_error(schema: dict, doc, path=()) -> None:
    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        validator = _VALIDATORS[id(schema)] = jsonschema.Draft202012Validator(schema)
    errors = list(validator.iter_errors(doc))
    if errors:
        e = jsonschema.exceptions.best_match(errors)
        raise SpecError(f"{_where((*path, *e.absolute_path))}: {e.message}")


def check(doc: object, space_id: int) -> dict:
    """The DAGs of one file's document, checked (:class:`SpecError` otherwise): DAG
    name -> DAG. ``space_id`` is the space whose ``dags/`` folder holds the file: a SQL
    step may name only that space's Collaborative or Publish connection."""
    if not isinstance(doc, dict):
        raise SpecError("the file must map DAG names to DAGs (name: {tasks: ...})")
    _code_keys(doc)
    for name, dag in doc.items():
        if isinstance(dag, dict):
            for step_name, step in (dag.get("tasks") or {}).items() if isinstance(dag.get("tasks"), dict) else ():
                op = step.get("operator") if isinstance(step, dict) else None
                if isinstance(step, dict) and op is not None and op not in OPERATORS:
                    raise SpecError(
                        f"{name}.tasks.{step_name}.operator: {str(op)[:100]!r} is not allowed: a step's "
                        f"operator is one of {', '.join(sorted(OPERATORS))} (no Airflow operator or Python "
                        "class runs from YAML)"
                    )
    _schema_error(FILE_SCHEMA, doc)
    for name, dag in doc.items():
        steps = dag["tasks"]
        for step_name, step in steps.items():
            where = (name, "tasks", step_name)
            _schema_error(STEP_SCHEMAS[step["operator"]], step, where)
            for dep in step.get("dependencies", ()):
                if dep not in steps:
                    raise SpecError(f"{_where(where)}.dependencies: no step {dep!r} in DAG {name!r}")
            if step["operator"] == "sql":
                conn_space, kind = parse_conn_id(step["conn_id"])
                if conn_space != space_id:
                    raise SpecError(
                        f"{_where(where)}.conn_id: {step['conn_id']!r} is a connection of another space: "
                        f"this space's are {conn_id(space_id, 'collaborative')!r} and "
                        f"{conn_id(space_id, 'publish')!r}"
                    )
                if kind not in SQL_DATABASES:
                    raise SpecError(
                        f"{_where(where)}.conn_id: a SQL step writes the space's Collaborative or Publish "
                        f"database: use {conn_id(space_id, 'collaborative')!r} or {conn_id(space_id, 'publish')!r}"
                    )
        _acyclic(name, steps)
    return doc


def _acyclic(name: str, steps: dict) -> None:
    state: dict[str, int] = {}

    def visit(s: str) -> None:
        if state.get(s) == 1:
            raise SpecError(f"{name}.tasks: the dependencies make a cycle through step {s!r}")
        if state.get(s) == 2:
            return
        state[s] = 1
        for dep in steps[s].get("dependencies", ()):
            visit(dep)
        state[s] = 2

    for s in steps:
        visit(s)


def conn_id(space_id: int, kind: str) -> str:
    """The Airflow connection id of one database of a space."""
    return f"space_{int(space_id)}_{kind}"


def parse_conn_id(value: str) -> tuple[int | None, str]:
    """``(space id, database kind)`` of a connection id, ``(None, "")`` when it is not one."""
    m = re.fullmatch(r"space_([0-9]{1,12})_([a-z]{1,20})", value or "")
    if not m or m.group(2) not in DATABASES:
        return None, ""
    return int(m.group(1)), m.group(2)


def dag_id(space_id: int, owner_id: int, name: str) -> str:
    """The Airflow DAG id of a YAML DAG (a member's own, in one space)."""
    return f"space_{int(space_id)}_u{int(owner_id)}_{name}"


def dagfactory_config(defn: dict) -> dict:
    """The dag-factory configuration of one checked DAG as the service hands it
    (``dag_id``, ``space_id``, ``owner_id``, ``owner``, ``file``, ``name``, ``spec``):
    only our operator classes, with the step's identity as their arguments. The step's
    own settings stay with the service, which reads them again at run time."""
    spec = defn["spec"]
    defaults = spec.get("default_args", {})
    tasks = {}
    for step_name, step in spec["tasks"].items():
        timeout = step.get("timeout_seconds", defaults.get("timeout_seconds", 3600))
        tasks[step_name] = {
            "operator": OPERATORS[step["operator"]],
            "space_id": defn["space_id"],
            "owner_id": defn["owner_id"],
            "dag_file": defn["file"],
            "dag_name": defn["name"],
            "retries": step.get("retries", defaults.get("retries", 0)),
            # the operator stops the run itself at timeout_seconds; this is Airflow's backstop
            "execution_timeout_seconds": int(timeout) + 60,
            "dependencies": list(step.get("dependencies", ())),
        }
    return {
        "description": spec.get("description") or f"YAML DAG {defn['name']!r} of {defn['owner']} (jupyterhub-spaces)",
        "schedule": spec.get("schedule"),
        # the cron schedule runs in the start date's time zone (catch-up off: no run
        # before the DAG was written)
        "start_date": "2024-01-01",
        "timezone": spec.get("timezone") or "UTC",
        "catchup": False,
        "max_active_runs": 1,
        "is_paused_upon_creation": False,
        "tags": ["jupyterhub-spaces", "yaml", f"space:{defn['space_id']}", *spec.get("tags", ())],
        "default_args": {"owner": defn["owner"]},
        "tasks": tasks,
    }
