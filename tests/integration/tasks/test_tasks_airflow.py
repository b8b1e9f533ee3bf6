"""Code Assets and Tasks end to end with a real Airflow: a notebook saved as a Code
Asset, a Task run by hand and every minute by Airflow, its run (status, log) through
the API, its Publish table published as a derived asset with lineage; governance at
run time (a revoked subscription refuses the next run, a run's credentials die with
it, a removed owner's tasks pause); bad input refused with nothing changed."""

from __future__ import annotations

import asyncio
import json
import time

import psycopg
import pytest
import requests
from sqlalchemy import func, select, update

from spaces_hub import API, _pg_admin_dsn, api_json

from jupyterhub_spaces import orm



def notebook(rows_default: int = 1) -> str:
    cells = [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "execution_count": None, "outputs": [],
         "source": f"rows = {rows_default}\n"},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": (
             "import os, psycopg\n"
             "with psycopg.connect(os.environ['SPACES_PUBLISH_DB_URL'], autocommit=True) as conn:\n"
             "    conn.execute('DROP TABLE IF EXISTS forecast')\n"
             "    conn.execute('CREATE TABLE forecast (day int, value int)')\n"
             "    for i in range(rows):\n"
             "        conn.execute('INSERT INTO forecast VALUES (%s, %s)', (i, 10 * i))\n"
             "print('wrote', rows, 'rows')\n"
         )},
    ]
    return json.dumps({"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                   "language": "python"}},
                       "nbformat": 4, "nbformat_minor": 5})


def wait_for(check, timeout=240, every=2.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def counts(store) -> dict:
    with store.transaction() as db:
        return {t.__tablename__: db.scalar(select(func.count()).select_from(t))
                # runs are left out: the every-minute task keeps adding them meanwhile
                for t in (orm.Task, orm.CodeAsset, orm.CodeAssetVersion, orm.CodeBlob)}


@pytest.fixture(scope="module")
def saved(tasks_hub):
    """alice's notebook saved as Code Asset 'forecast' (two versions)."""
    alice = tasks_hub.hub.token_session("alice")
    space = tasks_hub.ids["space:forecast"]
    r = alice.post(f"{API}spaces/{space}/code-assets",
                   json={"name": "forecast", "message": "first", "files": {"forecast.ipynb": notebook(1)}})
    assert r.status_code == 201, r.text
    first = api_json(r)
    r = alice.post(f"{API}spaces/{space}/code-assets",
                   json={"name": "forecast", "message": "two rows", "files": {"forecast.ipynb": notebook(2)}})
    assert r.status_code == 201, r.text
    return api_json(r), first


def test_code_asset_versions_are_content_addressed_with_lineage_and_diff(tasks_hub, saved):
    second, first = saved
    alice = tasks_hub.hub.token_session("alice")
    assert first["version"]["number"] == 1 and second["version"]["number"] == 2
    assert first["version"]["hash"] != second["version"]["hash"]
    assert second["version"]["lineage"]["products"] == [{"id": tasks_hub.ids["product:retail"], "name": "retail"}]
    # the same content again makes no version
    r = alice.post(f"{API}spaces/{tasks_hub.ids['space:forecast']}/code-assets",
                   json={"name": "forecast", "files": {"forecast.ipynb": notebook(2)}})
    assert r.status_code == 200 and api_json(r)["new_version"] is False
    r = alice.get(f"{API}code-assets/{second['id']}/diff?from=1&to=2")
    assert r.status_code == 200
    diff = api_json(r)["diff"]
    assert "-    \"rows = 1\\n\"" in diff or "rows = 1" in diff and "rows = 2" in diff
    r = alice.get(f"{API}code-assets/{second['id']}/versions/1")
    assert json.loads(api_json(r)["files"]["forecast.ipynb"])["cells"][0]["source"] == "rows = 1\n"
    # a member of no space of it sees nothing of it
    r = tasks_hub.hub.token_session("dave").get(f"{API}code-assets/{second['id']}")
    assert r.status_code == 404


def test_a_task_runs_by_hand_and_on_schedule_and_publishes_its_table(tasks_hub, saved):
    asset, _ = saved
    alice = tasks_hub.hub.token_session("alice")
    space = tasks_hub.ids["space:forecast"]
    r = alice.post(f"{API}spaces/{space}/tasks", json={
        "name": "nightly forecast", "code_asset_id": asset["id"], "parameters": {"rows": 3},
        "schedule": "* * * * *", "timezone": "Europe/Paris",
        "publish": [{"table": "forecast", "name": "forecast by task"}],
    })
    assert r.status_code == 201, r.text
    task = api_json(r)
    assert task["version"] == 2 and task["owner"] == "alice"

    # Airflow picks the task up within a parse; then run it by hand
    def trigger():
        r = alice.post(f"{API}tasks/{task['id']}/run")
        assert r.status_code in (202, 409), r.text
        return r.status_code == 202

    wait_for(trigger, what="Airflow to load the task's DAG")

    def done_runs():
        r = alice.get(f"{API}tasks/{task['id']}/runs")
        items = api_json(r)["items"]
        return [i for i in items if i["state"] not in ("running",)] and items

    runs = wait_for(lambda: [i for i in (done_runs() or []) if i["state"] != "running"], what="a finished run")
    run = runs[-1]
    detail = api_json(alice.get(f"{API}tasks/{task['id']}/runs/{run['id']}"))
    assert run["state"] == "success", detail
    assert "wrote 3 rows" in detail["log"]
    assert detail["duration_seconds"] is not None

    # its Publish table became a derived asset with lineage to the space's product
    assert len(detail["published"]) == 1
    graph = api_json(alice.get(f"{API}assets/{detail['published'][0]}/lineage"))
    assert graph["asset"]["derived"] is True if "asset" in graph else True
    assert "retail" in json.dumps(graph)

    # the run's own login is gone after it
    with tasks_hub.store.transaction() as db:
        started = db.scalars(select(orm.AuditEvent).where(
            orm.AuditEvent.action == "task.run", orm.AuditEvent.outcome == "started")).all()
        logins = [e.detail["login"] for e in started if e.detail.get("run_id") == run["id"]]
    assert logins and logins[0].startswith(tasks_hub.role_prefix)
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (logins[0],)).fetchone()[0] == 0

    # Airflow also runs it every minute on its own
    wait_for(lambda: any(i["engine_run_id"].startswith("scheduled__")
                         for i in api_json(alice.get(f"{API}tasks/{task['id']}/runs"))["items"]),
             timeout=200, every=5, what="a scheduled run")


def test_a_revoked_subscription_refuses_the_next_run_with_the_reason(tasks_hub, saved):
    asset, _ = saved
    alice = tasks_hub.hub.token_session("alice")
    space = tasks_hub.ids["space:forecast"]
    r = alice.post(f"{API}spaces/{space}/tasks", json={
        "name": "governed", "code_asset_id": asset["id"], "schedule": None})
    assert r.status_code == 201, r.text
    task = api_json(r)
    with tasks_hub.store.transaction() as db:
        db.execute(update(orm.Subscription).where(orm.Subscription.id == tasks_hub.ids["sub:alice:retail"])
                   .values(status="revoked"))
    try:
        # run now through the API: refused at once, with the reason
        r = alice.post(f"{API}tasks/{task['id']}/run")
        assert r.status_code == 403 and "revoked" in api_json(r)["message"], r.text
        # a run Airflow starts itself (as a schedule would) is refused at run time

        def trigger_in_airflow():
            try:
                asyncio.run(tasks_hub.airflow.trigger(task["id"]))
                return True
            except Exception as e:  # not parsed yet
                return "404" not in str(e) and (_ for _ in ()).throw(e)

        wait_for(trigger_in_airflow, what="Airflow to load the DAG")
        runs = wait_for(lambda: api_json(alice.get(f"{API}tasks/{task['id']}/runs"))["items"], what="a refused run")
        assert runs[0]["state"] == "refused"
        assert "revoked" in runs[0]["reason"] and "retail" in runs[0]["reason"]
        with tasks_hub.store.transaction() as db:
            refused = db.scalars(select(orm.AuditEvent).where(
                orm.AuditEvent.action == "task.run", orm.AuditEvent.outcome == "refused")).all()
        assert any(e.detail.get("missing") and e.detail["missing"][0]["reason"] == "revoked" for e in refused)
    finally:
        with tasks_hub.store.transaction() as db:
            db.execute(update(orm.Subscription).where(orm.Subscription.id == tasks_hub.ids["sub:alice:retail"])
                       .values(status="active"))


PROBE = """\
import os, psycopg
out = []
for kind in ("ASSET", "COLLABORATIVE", "PUBLISH"):
    try:
        with psycopg.connect(os.environ[f"SPACES_{kind}_DB_URL"], autocommit=True) as conn:
            conn.execute("CREATE TABLE probe_%s (a int)" % os.environ["SPACES_TASK_RUN_ID"])
        out.append(kind + "=wrote")
    except psycopg.Error:
        out.append(kind + "=refused")
print(" ".join(out), "mode=" + os.environ["SPACES_ACCESS_MODE"])
print("hub token:", "JUPYTERHUB_API_TOKEN" in os.environ)
print("uid:", os.getuid())
import json
secret = json.loads(os.environ["SPACES_TASK_PARAMETERS"])["secret"]
print("airflow home:", "visible" if os.path.exists(secret) else "hidden")
"""


def test_a_sandbox_owners_run_writes_only_collaborative_and_publish(tasks_hub):
    alice = tasks_hub.hub.token_session("alice")
    space = tasks_hub.ids["space:forecast"]
    r = alice.post(f"{API}spaces/{space}/code-assets", json={"name": "probe", "files": {"probe.py": PROBE}})
    assert r.status_code == 201, r.text
    r = alice.post(f"{API}spaces/{space}/tasks", json={
        "name": "probe", "code_asset_id": api_json(r)["id"],
        "parameters": {"secret": str(tasks_hub.airflow_home / "passwords.json")}})
    assert r.status_code == 201, r.text
    task = api_json(r)
    with tasks_hub.store.transaction() as db:
        db.execute(update(orm.Subscription).where(orm.Subscription.id == tasks_hub.ids["sub:alice:retail"])
                   .values(level="spaces"))
    try:
        def trigger():
            r = alice.post(f"{API}tasks/{task['id']}/run")
            assert r.status_code in (202, 409), r.text
            return r.status_code == 202

        wait_for(trigger, what="Airflow to load the task")
        runs = wait_for(lambda: [x for x in api_json(alice.get(f"{API}tasks/{task['id']}/runs"))["items"]
                                 if x["state"] != "running"], what="the run to end")
        run = api_json(alice.get(f"{API}tasks/{task['id']}/runs/{runs[0]['id']}"))
        assert run["state"] == "success", run
        assert "ASSET=refused COLLABORATIVE=wrote PUBLISH=wrote mode=sandbox" in run["log"]
        # the run's process got nothing of Airflow's environment, ran as the owner's own
        # account (as alice's sessions do) and sees nothing of the hub's or Airflow's state
        assert "hub token: False" in run["log"]
        assert "uid: 0" not in run["log"] and "airflow home: hidden" in run["log"]
    finally:
        with tasks_hub.store.transaction() as db:
            db.execute(update(orm.Subscription).where(orm.Subscription.id == tasks_hub.ids["sub:alice:retail"])
                       .values(level="full"))


def test_cancelling_a_running_run_stops_it_and_revokes_its_login(tasks_hub):
    alice = tasks_hub.hub.token_session("alice")
    space = tasks_hub.ids["space:forecast"]
    script = "import time\nprint('started', flush=True)\ntime.sleep(600)\n"
    r = alice.post(f"{API}spaces/{space}/code-assets", json={"name": "slow", "files": {"slow.py": script}})
    assert r.status_code == 201, r.text
    r = alice.post(f"{API}spaces/{space}/tasks", json={"name": "slow", "code_asset_id": api_json(r)["id"]})
    task = api_json(r)

    def trigger():
        r = alice.post(f"{API}tasks/{task['id']}/run")
        assert r.status_code in (202, 409), r.text
        return r.status_code == 202

    wait_for(trigger, what="Airflow to load the task")
    run = wait_for(lambda: next(iter(api_json(alice.get(f"{API}tasks/{task['id']}/runs"))["items"]), None),
                   what="the run to start")
    assert run["state"] == "running"
    # its output so far shows while it runs
    wait_for(lambda: "started" in api_json(alice.get(f"{API}tasks/{task['id']}/runs/{run['id']}"))["log"],
             timeout=60, what="the output so far")
    # a viewer may not cancel it
    r = tasks_hub.hub.token_session("carol").post(f"{API}tasks/{task['id']}/runs/{run['id']}/cancel")
    assert r.status_code == 403
    r = alice.post(f"{API}tasks/{task['id']}/runs/{run['id']}/cancel")
    assert r.status_code == 202, r.text
    ended = wait_for(lambda: (x := api_json(alice.get(f"{API}tasks/{task['id']}/runs/{run['id']}")))["state"]
                     != "running" and x, timeout=120, what="the run to stop")
    assert ended["state"] == "cancelled", ended
    with tasks_hub.store.transaction() as db:
        login = next(e.detail["login"] for e in db.scalars(select(orm.AuditEvent).where(
            orm.AuditEvent.action == "task.run", orm.AuditEvent.outcome == "started"))
            if e.detail.get("run_id") == run["id"])
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (login,)).fetchone()[0] == 0
    # a run that ended cannot be cancelled again
    r = alice.post(f"{API}tasks/{task['id']}/runs/{run['id']}/cancel")
    assert r.status_code == 409


def test_removing_a_member_pauses_their_tasks(tasks_hub, saved):
    asset, _ = saved
    bob = tasks_hub.hub.token_session("bob")
    space = tasks_hub.ids["space:forecast"]
    r = bob.post(f"{API}spaces/{space}/tasks", json={"name": "bobs", "code_asset_id": asset["id"]})
    assert r.status_code == 201, r.text
    task = api_json(r)
    alice = tasks_hub.hub.token_session("alice")
    r = alice.delete(f"{API}spaces/{space}/collaborators/bob")
    assert r.status_code == 204, r.text
    got = api_json(alice.get(f"{API}tasks/{task['id']}"))
    assert got["paused"] is True and "bob left" in got["paused_reason"]


@pytest.mark.parametrize("body,status,field", [
    ({"name": "x", "schedule": "61 * * * *"}, 422, "schedule"),
    ({"name": "x", "schedule": "every day"}, 422, "schedule"),
    ({"name": "x", "timezone": "Mars/Olympus"}, 422, "timezone"),
    ({"name": "x", "version": 99}, 422, "version"),
    ({"name": "x", "code_asset_id": 999999}, 422, "code_asset_id"),
    ({"name": "x", "retries": -1}, 422, "retries"),
    ({"name": "x", "publish": [{"table": "a; drop", "name": "n"}]}, 422, "publish"),
])
def test_bad_task_input_is_a_clear_4xx_and_changes_nothing(tasks_hub, saved, body, status, field):
    asset, _ = saved
    alice = tasks_hub.hub.token_session("alice")
    before = counts(tasks_hub.store)
    payload = {"code_asset_id": asset["id"], **body}
    r = alice.post(f"{API}spaces/{tasks_hub.ids['space:forecast']}/tasks", json=payload)
    assert r.status_code == status, r.text
    doc = api_json(r)
    assert field in doc.get("fields", {}) and doc["message"]
    assert counts(tasks_hub.store) == before


def test_tasks_on_a_space_you_cannot_edit_are_refused(tasks_hub, saved):
    asset, _ = saved
    before = counts(tasks_hub.store)
    carol = tasks_hub.hub.token_session("carol")  # viewer
    r = carol.post(f"{API}spaces/{tasks_hub.ids['space:forecast']}/tasks",
                   json={"name": "mine", "code_asset_id": asset["id"]})
    assert r.status_code == 403 and "viewer" in api_json(r)["message"]
    dave = tasks_hub.hub.token_session("dave")  # not a member: as if it did not exist
    r = dave.post(f"{API}spaces/{tasks_hub.ids['space:forecast']}/tasks",
                  json={"name": "mine", "code_asset_id": asset["id"]})
    assert r.status_code == 404
    # nor can dave point a task of his own space at alice's code
    r = dave.post(f"{API}spaces/{tasks_hub.ids['space:other']}/tasks",
                  json={"name": "stolen", "code_asset_id": asset["id"]})
    assert r.status_code == 422 and "code_asset_id" in api_json(r)["fields"]
    # users never reach the engine's endpoints
    r = dave.post(f"{API}engine/runs", json={"task_id": 1, "engine_run_id": "x"})
    assert r.status_code == 403
    r = dave.get(f"{API}engine/tasks")
    assert r.status_code == 403
    assert counts(tasks_hub.store) == before


def test_a_200_mb_upload_is_refused_before_it_is_read(tasks_hub):
    alice = tasks_hub.hub.token_session("alice")
    before = counts(tasks_hub.store)
    big = b'{"name": "big", "files": {"a.py": "' + b"x" * (200 * 1024 * 1024) + b'"}}'
    try:
        r = alice.post(f"{API}spaces/{tasks_hub.ids['space:forecast']}/code-assets", data=big,
                       headers={"Content-Type": "application/json"}, timeout=120)
    except Exception as e:  # the server may close the connection while the body is still sent
        pytest.fail(f"no JSON answer to a 200 MB upload: {e}")
    assert r.status_code == 413, r.text[:300]
    assert "at most" in api_json(r)["message"]
    assert counts(tasks_hub.store) == before


def test_airflows_ui_is_for_spaces_admins_only(tasks_hub):
    admin = tasks_hub.hub.browser("admin")
    r = admin.get("/services/airflow/")  # through the hub's OAuth into the gateway
    assert r.status_code == 200 and "airflow" in r.text.lower(), r.text[:300]
    # the UI's own API calls go through signed in as the service's Airflow user
    r = admin.get("/services/airflow/api/v2/dags")
    assert r.status_code == 200 and "dags" in r.json(), r.text[:300]
    # a member who is not an admin gets nothing of Airflow
    r = tasks_hub.hub.browser("alice").get("/services/airflow/api/v2/dags")
    assert r.status_code == 403
    r = requests.get(tasks_hub.hub.url + "/services/airflow/api/v2/dags", allow_redirects=False, timeout=30)
    assert r.status_code in (302, 403) and "dag_id" not in r.text
    # nor does a user's API token open it
    r = tasks_hub.hub.token_session("alice").get("/services/airflow/api/v2/dags")
    assert r.status_code == 403 and "dag_id" not in r.text
