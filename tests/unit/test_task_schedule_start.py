"""A Task's first scheduled run is the first slot after it was created, as Airflow's
own timetable decides (run in Airflow's virtualenv, with our DAG builder)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_PYTHON = Path(
    os.environ.get("SPACES_AIRFLOW_VENV")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jupyterhub-spaces" / "airflow-venv"
) / "bin" / "python"

FIRST_RUN = """
import json, sys
from airflow.serialization.encoders import coerce_to_core_timetable
from airflow.timetables.base import TimeRestriction
from jupyterhub_spaces.airflow.dags import build
defn = json.loads(sys.argv[1])
dag = build(defn)
# the scheduler's own view of the DAG's timetable
info = coerce_to_core_timetable(dag.timetable).next_dagrun_info(
    last_automated_data_interval=None,
    restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=dag.catchup),
)
print(info.run_after.isoformat())
"""


@pytest.mark.skipif(not AIRFLOW_PYTHON.exists(), reason="no Airflow virtualenv: run scripts/setup.d/55-airflow.sh")
@pytest.mark.parametrize("cron", ["0 0 1 1 *", "0 6 * * *"])
def test_a_new_task_waits_for_its_first_slot(tmp_path, cron):
    created = datetime.now(timezone.utc).replace(microsecond=0)
    defn = {"id": 1, "dag_id": "spaces_task_1", "name": "n", "space_slug": "s", "owner": "alice",
            "schedule": cron, "timezone": "UTC", "paused": False, "retries": 0, "timeout_seconds": 60,
            "created_at": created.isoformat()}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AIRFLOW_HOME": str(tmp_path),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/a.db"}
    out = subprocess.run([str(AIRFLOW_PYTHON), "-c", FIRST_RUN, json.dumps(defn)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    first = datetime.fromisoformat(out.stdout.strip().splitlines()[-1])
    # never a slot from before the task existed (it used to run the last one at once)
    assert first >= created, (first, created)
