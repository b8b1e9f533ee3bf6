"""The demo as ``make demo`` starts it: alice's *Retail forecasting* holds a task made
from a Code Asset, and the service starts its first run once the embedded Airflow has
loaded it, so the space shows a finished run with its log without anyone asking.
The first run is started once: asking again (as a restarted service does) starts none."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from conftest import AIRFLOW_VENV
from demo_hub import demo_hub, wait_for  # noqa: F401  (the fixture)

from jupyterhub_spaces import demo
from jupyterhub_spaces.store import Store
from jupyterhub_spaces.tasks.engine import AirflowClient

pytestmark = pytest.mark.slow


def test_the_demo_task_has_run_once_when_alice_opens_her_space(demo_hub):  # noqa: F811
    if not (AIRFLOW_VENV / "bin" / "airflow").exists():
        pytest.skip("no Airflow virtualenv: run scripts/setup.d/55-airflow.sh")
    s, _ = demo_hub.login("alice", demo_hub.password)
    api = f"{demo_hub.url}/services/spaces/api/v1/"
    s.get(f"{demo_hub.url}/services/spaces/login?next=/services/spaces/api/v1/me", timeout=30)
    space = next(sp for sp in s.get(api + "spaces", timeout=30).json()["items"]
                 if sp["slug"] == "retail-forecasting")

    tasks = s.get(f"{api}spaces/{space['id']}/tasks", timeout=30).json()["items"]
    assert [t["name"] for t in tasks] == ["Morning sales summary"]
    task = tasks[0]
    assert (task["owner"], task["schedule"], task["timezone"]) == ("alice", "0 6 * * *", "Europe/London")
    assert not task["paused"]
    # the next morning's 06:00 in London, within a day
    next_run = datetime.fromisoformat(task["next_run_at"])
    assert timedelta(0) < next_run - datetime.now(timezone.utc) <= timedelta(days=1)
    assert next_run.astimezone(ZoneInfo("Europe/London")).strftime("%H:%M") == "06:00"
    assets = s.get(f"{api}spaces/{space['id']}/code-assets", timeout=30).json()["items"]
    assert [(a["name"], a["latest_version"]) for a in assets] == [("sales-summary", 1)]

    # nobody asked: the service starts the first run once Airflow has the task
    def finished():
        runs = s.get(f"{api}tasks/{task['id']}/runs", timeout=30).json()["items"]
        return [r for r in runs if r["state"] != "running"]

    runs = wait_for(finished, timeout=600, what=f"the demo task's first run to end:\n{demo_hub.log()[-4000:]}")
    assert len(runs) == 1, runs
    run = s.get(f"{api}tasks/{task['id']}/runs/{runs[0]['id']}", timeout=30).json()
    assert run["state"] == "success", run
    assert "sales summary of space retail-forecasting" in run["log"]
    assert "retail_daily_sales" in run["log"] or "rows" in run["log"], run["log"]
    assert run["duration_seconds"] is not None
    listed = s.get(f"{api}spaces/{space['id']}/tasks", timeout=30).json()["items"][0]
    assert [r["state"] for r in listed["last_runs"]] == ["success"]

    # one first run, not two: Airflow may start the schedule's last slot itself, and
    # then the service starts none (a second run would show within seconds of the first)
    time.sleep(15)
    assert len(s.get(f"{api}tasks/{task['id']}/runs", timeout=30).json()["items"]) == 1

    # a restarted service asks again: nothing is pending, nothing starts
    store = Store(f"sqlite:///{demo_hub.var / 'spaces.sqlite'}")
    try:
        assert demo.pending_first_runs(store) == []
        engine = AirflowClient(f"http://127.0.0.1:{demo_hub.ports['airflow']}/services/airflow", "spaces",
                               str(demo_hub.var / "airflow" / "passwords.json"))
        assert asyncio.run(demo.first_runs(store, engine, interval=0.1, timeout=5)) == []
    finally:
        store.dispose()
    assert len(s.get(f"{api}tasks/{task['id']}/runs", timeout=30).json()["items"]) == 1
