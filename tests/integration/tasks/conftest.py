"""Fixtures for Tasks with a real Apache Airflow.

One hub per module, with the spaces service, and Airflow's API server, scheduler and
DAG processor as hub-managed services (from Airflow's cached virtualenv, built by
``scripts/setup.d/55-airflow.sh``; the tests skip without it or without PostgreSQL).
The catalog, Airflow's metadata and the space databases (PostgreSQL backend, login
roles with a per-run prefix) each live in a fresh PostgreSQL database.

Fixtures
--------
``tasks_hub`` (module)
    A :class:`TasksHub`: ``hub`` (a running :class:`spaces_hub.SpacesHub`), ``store``
    (the catalog), ``ids`` (``space:forecast``, ``space:other``, ``product:retail``,
    ``user:<name>``, ``sub:alice:retail``), ``airflow`` (an
    :class:`~jupyterhub_spaces.tasks.engine.AirflowClient` as the service's own user),
    ``role_prefix`` and ``data_url`` (the space databases), ``airflow_home`` and
    ``airflow_port``. Machinery in ``tasks_hub.py``. Space ``forecast``: alice
    owner, bob editor, carol viewer, product ``retail``; space ``other``: dave owner.
    Everyone holds a full subscription to ``retail``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tasks_hub import AIRFLOW_VENV, TasksHub, running_tasks_hub  # noqa: E402

from spaces_hub import postgres_available  # noqa: E402

__all__ = ["AIRFLOW_VENV", "TasksHub"]


@pytest.fixture(scope="module")
def tasks_hub(tmp_path_factory):
    if not postgres_available():
        pytest.skip("no PostgreSQL server answers at $SPACES_TEST_POSTGRES_URL")
    if not (AIRFLOW_VENV / "bin" / "airflow").exists():
        pytest.skip(f"no Airflow virtualenv at {AIRFLOW_VENV}: run scripts/setup.d/55-airflow.sh")
    with running_tasks_hub(tmp_path_factory.mktemp("tasks-hub")) as hub:
        yield hub
