"""Tasks in the embedded default as ``make demo`` runs it: the hub starts Airflow's
API server, scheduler and DAG processor (LocalExecutor, metadata in SQLite under the
hub's state directory), and a member's script saved as a Code Asset runs as a Task and
writes the space's SQLite Publish database. Airflow has no route in the hub's proxy."""

from __future__ import annotations

import pytest
import requests

from conftest import AIRFLOW_VENV
from demo_hub import demo_hub, wait_for  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow

SCRIPT = """\
import os, sqlite3
path = os.environ["SPACES_PUBLISH_DB_URL"].split("sqlite:///", 1)[1]
with sqlite3.connect(path) as db:
    db.execute("CREATE TABLE IF NOT EXISTS refreshed (at text)")
    db.execute("INSERT INTO refreshed VALUES (datetime('now'))")
print("refreshed", os.environ["SPACES_SPACE"])
"""


def healthy(port: int) -> bool:
    try:
        health = requests.get(f"http://127.0.0.1:{port}/services/airflow/api/v2/monitor/health", timeout=5).json()
    except (requests.RequestException, ValueError):
        return False
    return all(health.get(k, {}).get("status") == "healthy" for k in ("metadatabase", "scheduler", "dag_processor"))


def test_a_script_task_runs_under_the_embedded_airflow(demo_hub):  # noqa: F811
    if not (AIRFLOW_VENV / "bin" / "airflow").exists():
        pytest.skip("no Airflow virtualenv: run scripts/setup.d/55-airflow.sh")
    wait_for(lambda: healthy(demo_hub.ports["airflow"]), what=f"Airflow to start:\n{demo_hub.log()[-3000:]}")
    assert (demo_hub.var / "airflow" / "airflow.db").exists()  # SQLite metadata

    password = (demo_hub.var / "demo-password").read_text().strip()
    s, _ = demo_hub.login("alice", password)
    api = f"{demo_hub.url}/services/spaces/api/v1/"
    s.get(f"{demo_hub.url}/services/spaces/login?next=/services/spaces/api/v1/me", timeout=30)
    xsrf = {"X-XSRFToken": next(c.value for c in s.cookies
                                if c.name == "_xsrf" and c.path.startswith("/services/spaces"))}
    space = next(sp for sp in s.get(api + "spaces", timeout=30).json()["items"] if sp["slug"] == "retail-forecasting")
    r = s.post(f"{api}spaces/{space['id']}/code-assets", headers=xsrf, timeout=30,
               json={"name": "refresh", "files": {"refresh.py": SCRIPT}})
    assert r.status_code == 201, r.text
    r = s.post(f"{api}spaces/{space['id']}/tasks", headers=xsrf, timeout=30,
               json={"name": "refresh", "code_asset_id": r.json()["id"]})
    assert r.status_code == 201, r.text
    task = r.json()

    def run_now():
        r = s.post(f"{api}tasks/{task['id']}/run", headers=xsrf, timeout=30)
        assert r.status_code in (202, 409, 503), r.text
        return r.status_code == 202

    wait_for(run_now, what="Airflow to load the task")
    runs = wait_for(lambda: [x for x in s.get(f"{api}tasks/{task['id']}/runs", timeout=30).json()["items"]
                             if x["state"] != "running"], what="the run to end")
    run = s.get(f"{api}tasks/{task['id']}/runs/{runs[0]['id']}", timeout=30).json()
    assert run["state"] == "success", run
    assert "refreshed retail-forecasting" in run["log"]
