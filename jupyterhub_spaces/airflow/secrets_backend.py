"""The spaces secrets backend: each run reads only its own space's connections and
variables.

Airflow 3 runs each task instance in a process of its own (the Task SDK's task runner,
forked by the worker's supervisor), which loads the secrets backend named in
``[workers] secrets_backend`` ahead of its defaults (environment variables, then the
execution API). This backend answers only names of the spaces' own form,
``space_<id>_asset|collaborative|publish`` for connections and ``space_<id>_<name>``
for variables, and for those asks the spaces service **with the run's own credential**:
the one the service handed the step's operator when it started the run (see
:func:`use_run_token`), or ``$SPACES_RUN_TOKEN`` in a run's own process. It never
sends the Airflow component's JupyterHub token, so what a run gets is decided by the
service from the run alone: its space, its owner's role, while it runs. Another
space's name, no credential, or an ended run is an authoritative refusal
(``AirflowSecretsBackendAccessDenied``: Airflow asks no other backend); any other name
is left to the next backend.
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote

from airflow.secrets import BaseSecretsBackend

from . import client

#: the credential of the run this task process runs (one task instance per process)
_run_token = ""
OURS = re.compile(r"space_[0-9]{1,12}_[A-Za-z0-9_]{1,80}")


def use_run_token(token: str) -> None:
    """The credential of the run this process now runs (set by the step operator)."""
    global _run_token
    _run_token = token


def _denied(message: str) -> Exception:
    try:
        from airflow.sdk.exceptions import AirflowSecretsBackendAccessDenied
    except ImportError:  # an older Task SDK: a refusal is still an error
        AirflowSecretsBackendAccessDenied = PermissionError  # noqa: N806
    return AirflowSecretsBackendAccessDenied(message)


class SpacesSecretsBackend(BaseSecretsBackend):
    """Connections and variables of the run's own space, from the spaces service."""

    def _ask(self, path: str, name: str) -> dict:
        token = _run_token or os.environ.get("SPACES_RUN_TOKEN", "")
        if not token:
            raise _denied(f"{name!r} is read only by a running step of its space (no run credential here)")
        try:
            return client.call("GET", f"{path}/{quote(name, safe='')}", run_token=token)
        except client.SpacesAPIError as e:
            if e.status in (401, 403):
                raise _denied(f"{name!r} refused by jupyterhub-spaces: {e.message}") from None
            if e.status == 404:
                raise _denied(f"{name!r}: {e.message}") from None
            raise

    def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
        if not OURS.fullmatch(conn_id or ""):
            return None
        return json.dumps(self._ask("run/connections", conn_id)["connection"])

    def get_variable(self, key: str, team_name: str | None = None) -> str | None:
        if not OURS.fullmatch(key or ""):
            return None
        return self._ask("run/variables", key)["value"]
