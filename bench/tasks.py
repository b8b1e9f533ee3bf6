"""How much does a Task add to running code on Airflow?

In one run, one hub with the spaces service and a real Airflow (API server, scheduler,
DAG processor as managed services; LocalExecutor; metadata in PostgreSQL), two ways to
run the same Python script with the same Python:

(a) a bare Airflow DAG whose one BashOperator runs the script, triggered through
    Airflow's REST API;
(b) a Task of a space running the script saved as a Code Asset, triggered through the
    spaces API (the run-time governance check, the run's own database login issued and
    revoked, its working directory, the report of its end).

Alternating a and b, ``--rounds`` times each (default 10), each measured from the
trigger to the task instance starting (trigger-to-running) and to the DAG run ending
(total). Prints each time, the medians and the ratios b/a (target: at most 1.2).

    python bench/tasks.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration" / "tasks"))

from tasks_hub import running_tasks_hub  # noqa: E402

from jupyterhub_spaces.tasks.engine import dag_id  # noqa: E402
from spaces_hub import API  # noqa: E402

SCRIPT = "import time\nprint('working')\ntime.sleep(1)\nprint('done')\n"
BARE_DAG = """\
from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator

with DAG(dag_id="bench_bare", schedule=None, catchup=False, is_paused_upon_creation=False):
    BashOperator(task_id="run", bash_command={command!r})
"""


class Airflow:
    def __init__(self, port: int, home: Path):
        self.url = f"http://127.0.0.1:{port}/services/airflow"
        password = json.loads((home / "passwords.json").read_text())["spaces"]
        token = requests.post(f"{self.url}/auth/token", json={"username": "spaces", "password": password},
                              timeout=30).json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, headers=self.headers, timeout=30)

    def trigger(self, dag: str) -> str:
        r = requests.post(f"{self.url}/api/v2/dags/{dag}/dagRuns", headers=self.headers, timeout=30,
                          json={"logical_date": None})
        r.raise_for_status()
        return r.json()["dag_run_id"]

    def latest_run(self, dag: str) -> str | None:
        items = self.get(f"/api/v2/dags/{dag}/dagRuns?order_by=-run_after&limit=1").json().get("dag_runs", [])
        return items[0]["dag_run_id"] if items else None

    def wait(self, dag: str, run_id: str, timeout: float = 300) -> tuple[datetime, datetime]:
        """(task instance start, dag run end) once the run ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(f"/api/v2/dags/{dag}/dagRuns/{run_id}").json()
            if run.get("state") in ("success", "failed"):
                if run["state"] != "success":
                    raise RuntimeError(f"{dag} run {run_id} failed")
                ti = self.get(f"/api/v2/dags/{dag}/dagRuns/{run_id}/taskInstances").json()["task_instances"][0]
                return _time(ti["start_date"]), _time(run["end_date"])
            time.sleep(0.2)
        raise TimeoutError(f"{dag} run {run_id} did not end")

    def known(self, dag: str) -> bool:
        return self.get(f"/api/v2/dags/{dag}").status_code == 200


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tasks-") as tmp, running_tasks_hub(Path(tmp)) as th:
        alice = th.hub.token_session("alice")
        space = th.ids["space:forecast"]
        r = alice.post(f"{API}spaces/{space}/code-assets", json={"name": "bench", "files": {"job.py": SCRIPT}})
        r.raise_for_status()
        r = alice.post(f"{API}spaces/{space}/tasks", json={"name": "bench", "code_asset_id": r.json()["id"]})
        r.raise_for_status()
        task_id = r.json()["id"]
        script = Path(tmp) / "job.py"
        script.write_text(SCRIPT)
        from jupyterhub_spaces.tasks.config import SpacesTasks

        python = SpacesTasks().python
        (th.airflow_home / "dags" / "bench_bare.py").write_text(BARE_DAG.format(command=f"{python} {script}"))
        airflow = Airflow(th.airflow_port, th.airflow_home)
        deadline = time.monotonic() + 300
        while not (airflow.known("bench_bare") and airflow.known(dag_id(task_id))):
            if time.monotonic() > deadline:
                raise TimeoutError("Airflow did not load both DAGs")
            time.sleep(1)

        def bare() -> tuple[float, float]:
            t0 = time.time()
            run_id = airflow.trigger("bench_bare")
            started, ended = airflow.wait("bench_bare", run_id)
            return started.timestamp() - t0, ended.timestamp() - t0

        def task() -> tuple[float, float]:
            t0 = time.time()
            r = alice.post(f"{API}tasks/{task_id}/run")
            r.raise_for_status()
            started, ended = airflow.wait(dag_id(task_id), r.json()["engine_run_id"])
            return started.timestamp() - t0, ended.timestamp() - t0

        times = {"bare": [], "task": []}
        for i in range(args.rounds):
            for name, run in (("bare", bare), ("task", task)):
                start, total = run()
                times[name].append((start, total))
                print(f"round {i + 1} {name:4}: trigger-to-running {start:6.2f} s, total {total:6.2f} s", flush=True)
        med = {n: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)) for n, v in times.items()}
        print(f"median bare: trigger-to-running {med['bare'][0]:.2f} s, total {med['bare'][1]:.2f} s")
        print(f"median task: trigger-to-running {med['task'][0]:.2f} s, total {med['task'][1]:.2f} s")
        print(f"ratio task/bare: trigger-to-running {med['task'][0] / med['bare'][0]:.2f}, "
              f"total {med['task'][1] / med['bare'][1]:.2f} (target: at most 1.2)")


if __name__ == "__main__":
    main()
