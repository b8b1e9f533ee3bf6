"""The operators of YAML DAGs: the only classes dag-factory is ever given
(:data:`.spec.OPERATORS`).

Each carries only the identity of its step (space, owner, file, DAG, step name): the
spaces service reads the step from the owner's YAML again when the step starts
(``POST engine/dag-runs``), decides with the owner's access now, and answers with what
to run. Nothing of a space is rendered by Jinja (no template fields) or imported here.
"""

from __future__ import annotations

import os
from datetime import timedelta

from . import client, secrets_backend
from .operator import SpacesTaskOperator


class _Step(SpacesTaskOperator):
    runs_path = "engine/dag-runs"
    template_fields = ()
    kind = ""

    def __init__(self, *, space_id: int, owner_id: int, dag_file: str, dag_name: str,
                 execution_timeout_seconds: int | None = None, **kwargs):
        if execution_timeout_seconds:
            kwargs["execution_timeout"] = timedelta(seconds=int(execution_timeout_seconds))
        super().__init__(spaces_task_id=0, **kwargs)
        self.space_id = int(space_id)
        self.owner_id = int(owner_id)
        self.dag_file = dag_file
        self.dag_name = dag_name

    def execute(self, context):
        from airflow.sdk.exceptions import AirflowFailException

        ti = context["ti"]
        try:
            start = client.call("POST", "engine/dag-runs", {
                "space_id": self.space_id, "owner_id": self.owner_id, "file": self.dag_file,
                "dag": self.dag_name, "step": self.task_id, "engine_run_id": context["run_id"],
                "try_number": int(getattr(ti, "try_number", 1) or 1),
            })
        except client.SpacesAPIError as e:
            if e.status in (403, 404, 409, 422):
                self.log.error("step refused by jupyterhub-spaces: %s", e.message)
                raise AirflowFailException(f"step refused: {e.message}") from None
            raise
        self._run_id = start["run_id"]
        if start.get("env") is not None:
            # the run's code may read its own space's connections and variables too
            start["env"]["SPACES_API_URL"] = os.environ["SPACES_API_URL"]
        if start["kind"] != self.kind:
            self._finish("failed", f"the step is now of kind {start['kind']!r}, not {self.kind!r}: "
                                   "wait for the DAG to be parsed again")
            raise AirflowFailException(f"step {self.task_id} changed kind")
        return self.run_step(start)

    def run_step(self, start: dict):
        returncode, output, state = self._run(start)
        reply = self._finish(state, output, returncode)
        if reply.get("state") != "success":
            raise RuntimeError(f"the step's run {reply.get('state')}: {reply.get('reason', '')}")
        return {"run_id": start["run_id"]}

    def _finish(self, state: str, log: str, returncode: int | None = None) -> dict:
        reply = client.call("POST", f"{self.runs_path}/{self._run_id}/finish",
                            {"returncode": returncode, "log": log, "state": state})
        self._run_id = None
        return reply


class CodeAssetStep(_Step):
    """Runs a Code Asset version of the space, as a Task's run does."""

    kind = "code_asset"


class SQLStep(_Step):
    """Runs the step's SQL on the space's Collaborative or Publish database, with the
    run's own login, which it reads as an Airflow connection through the spaces
    secrets backend (with the run's own credential)."""

    kind = "sql"

    def run_step(self, start: dict):
        from airflow.sdk import BaseHook

        secrets_backend.use_run_token(start["run_token"])
        try:
            conn = BaseHook.get_connection(start["conn_id"])
            start["env"]["SPACES_SQL_URL"] = conn.extra_dejson["sqlalchemy_url"]
        except Exception as e:
            self._finish("failed", f"connection {start['conn_id']!r} not available: {e}\n")
            raise
        finally:
            secrets_backend.use_run_token("")
        return super().run_step(start)


class PublishStep(_Step):
    """Publishes a Publish table as a derived asset; the service does it when the step
    starts, through the same path as a publish from the API."""

    kind = "publish"

    def run_step(self, start: dict):
        from airflow.sdk.exceptions import AirflowFailException

        self.log.info("%s", start.get("log", "").strip())
        if start["state"] != "success":
            raise AirflowFailException(start.get("reason") or "not published")
        return {"run_id": start["run_id"], "published": start["published"]}
