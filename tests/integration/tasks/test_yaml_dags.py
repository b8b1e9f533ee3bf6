"""YAML DAGs end to end with a real Airflow: DAGs written in a space's dags/ folder load
(each file on its own: a malformed one shows its error in the space and breaks nobody
else's DAGs), run as their owner step by step (a Code Asset, SQL on the space's
Collaborative and Publish databases with the run's own login read through the spaces
secrets backend, a publish making a derived asset with lineage), and a run reads only
its own space's connections and variables."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import psycopg
import pytest
import requests
from sqlalchemy import select

from spaces_hub import API, _pg_admin_dsn, api_json

from jupyterhub_spaces import orm
from jupyterhub_spaces.databases.postgres import schema_name

from tasks_hub import AIRFLOW_VENV
from test_tasks_airflow import wait_for

#: a member's code in a step, acting hostile: it asks the service for what its run may
#: and may not read, with its own credential, a forged one, and none
PROBE = """\
import json, os, urllib.error, urllib.request
base = os.environ["SPACES_API_URL"].rstrip("/") + "/"
token = os.environ["SPACES_RUN_TOKEN"]
space = os.environ["SPACES_SPACE_ID"]
other = json.loads(os.environ["SPACES_TASK_PARAMETERS"])["other"]

def ask(path, tok):
    req = urllib.request.Request(base + path, headers={"X-Spaces-Run-Token": tok} if tok else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            doc = json.loads(r.read())
            return [r.status, doc.get("connection", {}).get("login") or doc.get("value")]
    except urllib.error.HTTPError as e:
        return [e.code, json.loads(e.read() or b"{}").get("message", "")]

print("PROBE " + json.dumps({
    "own": ask(f"run/connections/space_{space}_collaborative", token),
    "other": ask(f"run/connections/space_{other}_collaborative", token),
    "own_var": ask(f"run/variables/space_{space}_region", token),
    "other_var": ask(f"run/variables/space_{other}_slug", token),
    "forged": ask(f"run/connections/space_{space}_collaborative", token.split(".")[0] + ".forged"),
    "none": ask(f"run/connections/space_{space}_collaborative", ""),
    "engine": ask("engine/dags", token),
}))
print("TOKEN " + token)
"""


def etl_yaml(space: int, other: int) -> str:
    return textwrap.dedent(f"""\
        etl:
          description: staging rows, their summary, published
          schedule: null
          tasks:
            probe:
              operator: code_asset
              code_asset: probe
              parameters: {{other: {other}}}
            collect:
              operator: sql
              conn_id: space_{space}_collaborative
              sql: |
                DROP TABLE IF EXISTS staging;
                CREATE TABLE staging (n int);
                INSERT INTO staging VALUES (1), (2), (3);
              dependencies: [probe]
            summary:
              operator: sql
              conn_id: space_{space}_publish
              sql: |
                DROP TABLE IF EXISTS yaml_summary;
                CREATE TABLE yaml_summary AS SELECT count(*) AS n FROM staging;
              dependencies: [collect]
            share:
              operator: publish
              table: yaml_summary
              name: summary by yaml
              dependencies: [summary]
        """)


def airflow_get(tasks_hub, path: str) -> requests.Response:
    password = json.loads((tasks_hub.airflow_home / "passwords.json").read_text())["spaces"]
    base = f"http://127.0.0.1:{tasks_hub.airflow_port}/services/airflow"
    token = requests.post(f"{base}/auth/token", json={"username": "spaces", "password": password},
                          timeout=30).json()["access_token"]
    return requests.get(base + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.fixture(scope="module")
def dags(tasks_hub):
    """alice's dags/ (one good DAG, two bad files, variables) in space forecast, and
    dave's one DAG in space other; returns the DAG ids."""
    ids = tasks_hub.ids
    space, other = ids["space:forecast"], ids["space:other"]
    homes = tasks_hub.hub.workdir / "homes"
    alice_dags = homes / "alice" / f"space-{space}" / "dags"
    alice_dags.mkdir(parents=True, exist_ok=True)
    (alice_dags / "etl.yaml").write_text(etl_yaml(space, other))
    (alice_dags / "variables.yaml").write_text("region: north\n")
    (alice_dags / "broken.yaml").write_text(textwrap.dedent("""\
        sneaky:
          tasks:
            shell:
              operator: airflow.providers.standard.operators.python.PythonOperator
              python_callable: os.system
        """))
    (alice_dags / "elsewhere.yaml").write_text(textwrap.dedent(f"""\
        peek:
          tasks:
            read:
              operator: sql
              conn_id: space_{other}_collaborative
              sql: SELECT * FROM secrets
        """))
    dave_dags = homes / "dave" / f"space-{other}" / "dags"
    dave_dags.mkdir(parents=True, exist_ok=True)
    (dave_dags / "daily.yaml").write_text(textwrap.dedent(f"""\
        daily:
          schedule: "0 3 * * *"
          timezone: Europe/Paris
          tasks:
            tidy:
              operator: sql
              conn_id: space_{other}_collaborative
              sql: CREATE TABLE IF NOT EXISTS tidy (n int);
        """))
    alice = tasks_hub.hub.token_session("alice")
    r = alice.post(f"{API}spaces/{space}/code-assets", json={"name": "probe", "files": {"probe.py": PROBE}})
    assert r.status_code == 201, r.text
    return {"etl": f"space_{space}_u{ids['user:alice']}_etl", "daily": f"space_{other}_u{ids['user:dave']}_daily"}


def test_a_malformed_file_shows_its_error_in_the_space_and_breaks_no_other_dag(tasks_hub, dags):
    space, other = tasks_hub.ids["space:forecast"], tasks_hub.ids["space:other"]
    # any member sees the space's DAG files, each with its DAGs or its error
    r = tasks_hub.hub.token_session("carol").get(f"{API}spaces/{space}/dags")
    assert r.status_code == 200, r.text
    listing = api_json(r)
    files = {f["file"]: f for f in listing["items"]}
    assert set(files) == {"dags/etl.yaml", "dags/broken.yaml", "dags/elsewhere.yaml"}
    assert files["dags/etl.yaml"]["error"] is None
    assert [d["dag_id"] for d in files["dags/etl.yaml"]["dags"]] == [dags["etl"]]
    assert [s["name"] for s in files["dags/etl.yaml"]["dags"][0]["steps"]] == ["probe", "collect", "summary", "share"]
    # a named operator or callable is refused with the reason
    assert files["dags/broken.yaml"]["error"].startswith(
        "sneaky.tasks.shell.python_callable: 'python_callable' would name Python code")
    # another space's connection is refused, naming this space's own
    assert (f"'space_{other}_collaborative' is a connection of another space: this space's are "
            f"'space_{space}_collaborative'") in files["dags/elsewhere.yaml"]["error"]
    assert listing["connections"] == [f"space_{space}_collaborative", f"space_{space}_publish"]
    # a non-member sees nothing of it
    assert tasks_hub.hub.token_session("dave").get(f"{API}spaces/{space}/dags").status_code == 404
    # Airflow loads the good DAGs of both spaces, and none of the bad files'
    wait_for(lambda: airflow_get(tasks_hub, f"/api/v2/dags/{dags['daily']}").status_code == 200,
             what="dave's DAG in Airflow")
    wait_for(lambda: airflow_get(tasks_hub, f"/api/v2/dags/{dags['etl']}").status_code == 200,
             what="alice's DAG in Airflow")
    daily = airflow_get(tasks_hub, f"/api/v2/dags/{dags['daily']}").json()
    assert "Europe/Paris" in json.dumps(daily) or daily.get("timetable_summary")
    found = airflow_get(tasks_hub, "/api/v2/dags?dag_id_pattern=sneaky").json()
    assert found["total_entries"] == 0


def test_a_yaml_dag_runs_its_steps_as_its_owner_and_publishes_with_lineage(tasks_hub, dags):
    space = tasks_hub.ids["space:forecast"]
    alice = tasks_hub.hub.token_session("alice")
    # a viewer may not run it; a DAG not in the space is a 404
    assert tasks_hub.hub.token_session("carol").post(f"{API}spaces/{space}/dags/{dags['etl']}/run").status_code == 403
    assert alice.post(f"{API}spaces/{space}/dags/{dags['daily']}/run").status_code == 404

    def trigger():
        r = alice.post(f"{API}spaces/{space}/dags/{dags['etl']}/run")
        assert r.status_code in (202, 409), r.text
        return r.status_code == 202

    wait_for(trigger, what="Airflow to load the YAML DAG")

    def finished():
        files = {f["file"]: f for f in api_json(alice.get(f"{API}spaces/{space}/dags"))["items"]}
        runs = {r["step"]: r for r in files["dags/etl.yaml"]["dags"][0]["last_runs"]}
        if runs.get("share", {}).get("state") not in (None, "running") or any(
                r["state"] in ("failed", "refused") for r in runs.values()):
            return runs
        return None

    runs = wait_for(finished, timeout=300, what="the DAG's steps to end")
    assert {s: r["state"] for s, r in runs.items()} == dict.fromkeys(("probe", "collect", "summary", "share"),
                                                                       "success"), runs

    # the hostile step read its own space's connection (its run's own login) and
    # variable, and nothing of another space, nor anything without its credential
    probe = json.loads(next(line[6:] for line in runs["probe"]["log"].splitlines() if line.startswith("PROBE ")))
    assert probe["own"][0] == 200
    assert probe["own_var"] == [200, "north"]
    assert probe["other"][0] == 403 and "is not of this run's space" in probe["other"][1]
    assert probe["other_var"][0] == 403
    assert probe["forged"][0] == 401 and probe["none"][0] == 401 and probe["engine"][0] == 401
    # its credential died with the run
    token = next(line[6:] for line in runs["probe"]["log"].splitlines() if line.startswith("TOKEN "))
    r = requests.get(f"{tasks_hub.hub.url}{API}run/connections/space_{space}_collaborative",
                     headers={"X-Spaces-Run-Token": token}, timeout=30)
    assert r.status_code == 401 and "has ended" in r.json()["message"]
    dags["dead_token"] = token

    # the SQL steps wrote the Collaborative and the Publish databases
    with psycopg.connect(tasks_hub.data_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        assert conn.execute(f"SELECT count(*) FROM {schema_name(space, 'collaborative')}.staging").fetchone()[0] == 3
        assert conn.execute(f"SELECT n FROM {schema_name(space, 'publish')}.yaml_summary").fetchone()[0] == 3

    # the publish step made a derived asset with lineage to the space's product
    assert len(runs["share"]["published"]) == 1
    graph = api_json(alice.get(f"{API}assets/{runs['share']['published'][0]}/lineage"))
    assert "retail" in json.dumps(graph)

    # each run had its own login, revoked at its end; all of it is audited
    with tasks_hub.store.transaction() as db:
        events = [e for e in db.scalars(select(orm.AuditEvent).where(orm.AuditEvent.action == "dag.run"))
                  if e.detail.get("dag_id") == dags["etl"]]
        logins = {e.detail["step"]: e.detail["login"] for e in events if e.outcome == "started"}
        assert {e.detail["step"] for e in events if e.outcome == "success"} >= {"probe", "collect", "summary", "share"}
        refusals = db.scalars(select(orm.AuditEvent).where(orm.AuditEvent.action == "run.secret")).all()
        assert {e.detail["asked"] for e in refusals} >= {f"space_{tasks_hub.ids['space:other']}_collaborative",
                                                        f"space_{tasks_hub.ids['space:other']}_slug"}
    assert set(logins) == {"probe", "collect", "summary"} and len(set(logins.values())) == 3
    assert probe["own"][1] == logins["probe"]  # the connection it read was its run's own login
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        for login in logins.values():
            assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (login,)).fetchone()[0] == 0


BACKEND_CHECK = """\
import json, sys
from jupyterhub_spaces.airflow.secrets_backend import SpacesSecretsBackend, use_run_token
backend = SpacesSecretsBackend()
out = {"not ours": backend.get_conn_value("postgres_default")}
for name, token, call in [("no credential", "", backend.get_conn_value), ("ended run", sys.argv[1], backend.get_conn_value),
                          ("variable, ended run", sys.argv[1], backend.get_variable)]:
    use_run_token(token)
    try:
        out[name] = call(sys.argv[2])
    except Exception as e:
        out[name] = [type(e).__name__, str(e)]
print(json.dumps(out))
"""


def test_the_secrets_backend_in_airflow_refuses_without_a_live_run_credential(tasks_hub, dags, tmp_path):
    """The backend as Airflow loads it: no credential, or an ended run's, reads nothing
    (an authoritative refusal: Airflow asks no other backend); other names are left to
    the next backend."""
    if "dead_token" not in dags:
        pytest.skip("needs the run of the previous test")
    space = tasks_hub.ids["space:forecast"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "SPACES_RUN"))}
    env.update({"PYTHONPATH": str(Path(__file__).resolve().parents[3]), "AIRFLOW_HOME": str(tmp_path),
                "SPACES_API_URL": f"{tasks_hub.hub.url}{API}"})
    done = subprocess.run([str(AIRFLOW_VENV / "bin" / "python"), "-c", BACKEND_CHECK, dags["dead_token"],
                           f"space_{space}_collaborative"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["not ours"] is None
    assert out["no credential"][0] == "AirflowSecretsBackendAccessDenied"
    assert "no run credential" in out["no credential"][1]
    assert out["ended run"][0] == "AirflowSecretsBackendAccessDenied" and "has ended" in out["ended run"][1]
    assert out["variable, ended run"][0] == "AirflowSecretsBackendAccessDenied"
