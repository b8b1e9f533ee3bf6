"""One Airflow DAG per Task, built from the spaces service's definitions.

The DAGs folder holds one fixed file that calls :func:`task_dags`; Airflow's DAG
processor parses it every few seconds, so a saved, changed, paused or deleted Task
shows in Airflow within one parse. Nothing here imports code of a space: each DAG has
one :class:`~.operator.SpacesTaskOperator` that runs the Task's code in its own
process when a worker executes it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from . import client

log = logging.getLogger(__name__)

#: the start of a Task's schedule when the service does not say when it was created
START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def start_of(defn: dict) -> datetime:
    """When the Task's schedule starts: its creation. With catch-up off, Airflow runs
    the most recent slot at or after the start date at once; an older start date made a
    Task created at 10:00 with ``0 6 * * *`` run at 10:00 instead of the next day."""
    try:
        created = datetime.fromisoformat(defn["created_at"])
    except (KeyError, TypeError, ValueError):
        return START
    return created if created.tzinfo else created.replace(tzinfo=timezone.utc)


def definitions() -> list[dict]:
    return client.call("GET", "engine/tasks")["tasks"]


def build(defn: dict):
    """The DAG of one Task definition."""
    from airflow.sdk import DAG, CronTriggerTimetable

    from .operator import SpacesTaskOperator

    schedule = None
    # a paused task keeps its DAG (its runs stay visible) but has no schedule, so the
    # scheduler starts nothing; a run started by hand is refused by the service
    if defn.get("schedule") and not defn.get("paused"):
        schedule = CronTriggerTimetable(defn["schedule"], timezone=defn.get("timezone") or "UTC")
    with DAG(
        dag_id=defn["dag_id"],
        description=f"Task {defn['name']!r} of space {defn['space_slug']!r} (jupyterhub-spaces)",
        schedule=schedule,
        start_date=start_of(defn),
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=bool(defn.get("paused")),
        tags=["jupyterhub-spaces", f"space:{defn['space_slug']}"],
        default_args={"owner": defn["owner"]},
    ) as dag:
        SpacesTaskOperator(
            task_id="run",
            spaces_task_id=defn["id"],
            retries=int(defn.get("retries", 0)),
            retry_delay=timedelta(seconds=int(defn.get("retry_delay_seconds", 30))),
            # the operator ends the run's process itself at timeout_seconds; this is
            # Airflow's own backstop a little later
            execution_timeout=timedelta(seconds=int(defn["timeout_seconds"]) + 60),
        )
    return dag


def task_dags() -> dict:
    """Every Task's DAG by DAG id. A definition that cannot be built is logged and
    skipped: it never breaks the other Tasks' DAGs."""
    dags = {}
    for defn in definitions():
        try:
            dags[defn["dag_id"]] = build(defn)
        except Exception:
            log.exception("cannot build the DAG of task %s", defn.get("id"))
    return dags
