"""The Sandbox role in Superset and SQL Lab, checked route by route, and SQL Lab on a
space's SQLite database kept inside its own file.

One real Superset for a sandbox session (bob), its databases SQLite files. The routes
come from the app itself (``superset_routes.py`` builds it from the session's own
configuration and lists ``app.url_map`` with the permission each view checks), so a
route a future Superset adds is checked without a change here:

* every route that, by its name, its path or the permission it checks, hands data
  out as a file, a stream, an export or an image is requested with real objects
  behind it (a query that ran, a dataset, a chart, a dashboard, a saved query) and
  must be refused: 401/403/404/405 or a redirect to a login page, never data;
* every GET and POST route of the app is requested too (GET also with CSV/Excel
  format parameters, POST also with a chart-data form asking for CSV), and none may
  answer with a file (CSV, Excel, ZIP, an image, an attachment);
* the data routes that can answer in a file format are asked for CSV and Excel and
  must refuse, while the same request in JSON works (so the refusal is the
  format's, not a bad request's).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest

from jupyterhub_spaces.tools.catalog import superset_venv
from tools_session import ToolsSession, run_sql, superset_api, superset_installed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not superset_installed(),
        reason="Superset's virtualenv is missing: run scripts/setup.d/50-superset.sh",
    ),
]

#: a route hands data out by its name or fixed path ...
DATA_OUT_NAME = re.compile(
    r"export|csv|xls|excel|download|stream|screenshot|thumbnail|image|png|jpe?g|gif|pdf|zip|"
    r"file|upload|avatar|attachment|print",
    re.IGNORECASE,
)
#: ... or by the permission it checks
DATA_OUT_PERMISSION = re.compile(r"export|csv|xls|excel|download|upload|screenshot|thumbnail", re.IGNORECASE)
#: routes that answer data and may be asked for it in another format
DATA_ROUTE = re.compile(r"data|explore_json|result|samples", re.IGNORECASE)
FILE_TYPES = re.compile(
    r"^(text/csv|application/(vnd\.|zip|x-zip|octet-stream|pdf|x-yaml|yaml)|image/)", re.IGNORECASE
)
STATIC = ("static", "appbuilder.static")
NOTES = [(1, "north"), (2, "south")]


@pytest.fixture(scope="module")
def space_files(tmp_path_factory, asset_sqlite):
    folder = tmp_path_factory.mktemp("space-dbs")
    collab = folder / "collaborative.sqlite"
    with sqlite3.connect(collab) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, region TEXT)")
        conn.executemany("INSERT INTO notes VALUES (?, ?)", NOTES)
    return {"asset": asset_sqlite[0], "collaborative": f"sqlite:///{collab}", "folder": folder}


@pytest.fixture(scope="module")
def session(tmp_path_factory, space_files):
    s = ToolsSession(
        tmp_path_factory.mktemp("bob-routes") / "home",
        user="bob",
        space="retail",
        mode="sandbox",
        tools="sqllab",
        env={
            "SPACES_ASSET_DB_URL": space_files["asset"],
            "SPACES_COLLABORATIVE_DB_URL": space_files["collaborative"],
        },
    )
    s.start()
    try:
        s.wait_ready("sqllab")
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def routes(session, tmp_path_factory) -> list[dict]:
    """Every route of the session's Superset, from the app built with its config."""
    home = session.home / ".spaces" / "superset"
    out = tmp_path_factory.mktemp("routes") / "routes.json"
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env.update(
        SUPERSET_CONFIG_PATH=str(home / "superset_config.py"),
        SUPERSET_APP_ROOT=session.prefix + "superset",
        SPACES_SUPERSET_PROXY_TOKEN="routes-listing",
        SPACES_SUPERSET_USER="bob",
        HOME=str(session.home),
    )
    python = os.path.join(superset_venv(os.environ), "bin", "python")
    script = Path(__file__).with_name("superset_routes.py")
    done = subprocess.run(
        [python, str(script), str(out)], env=env, cwd=home, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(out.read_text())
    assert len(found) > 200  # the whole app, not a stub
    return found


def database_ids(session) -> dict:
    return json.loads((session.home / ".spaces" / "superset" / "spaces-state.json").read_text())["databases"]


@pytest.fixture(scope="module")
def objects(session):
    """Real objects behind the routes: a query that ran, a dataset, a chart, a
    dashboard, a saved query (made by bob, whom the Sandbox role lets make them)."""
    http, base, csrf = superset_api(session)
    headers = {"X-CSRFToken": csrf, "Referer": base + "/sqllab/"}
    collab = database_ids(session)["collaborative"]
    client_id = "rt" + uuid.uuid4().hex[:8]
    r = run_sql(session, collab, "SELECT id, region FROM notes ORDER BY id", client_id)
    assert r.status_code == 200 and [d["region"] for d in r.json()["data"]] == ["north", "south"], r.text
    found = {"client_id": client_id, "database": collab}

    def create(kind, body):
        r = http.post(f"{base}/api/v1/{kind}/", json=body, headers=headers, timeout=60)
        assert r.status_code == 201, (kind, r.status_code, r.text)
        return r.json()["id"]

    found["dataset"] = create("dataset", {"database": collab, "schema": "main", "table_name": "notes"})
    found["chart"] = create("chart", {
        "slice_name": "Notes", "viz_type": "table", "datasource_id": found["dataset"],
        "datasource_type": "table", "params": json.dumps({"all_columns": ["id", "region"], "query_mode": "raw"}),
    })
    found["dashboard"] = create("dashboard", {"dashboard_title": "Notes board"})
    found["saved_query"] = create("saved_query", {"db_id": collab, "label": "notes", "sql": "SELECT * FROM notes"})
    found["user"] = http.get(f"{base}/api/v1/me/", timeout=60).json()["result"]["id"]
    return found


RESOURCES = {
    "chart": "chart", "dashboard": "dashboard", "dataset": "dataset", "datasource": "dataset",
    "database": "database", "databaseview": "database", "saved_query": "saved_query",
    "savedqueryview": "saved_query",
}


def fill(rule: str, objects: dict) -> str:
    """The route's path with real values for its arguments."""
    parts = [p for p in rule.split("/") if p and not p.startswith("<")]
    resource = next((RESOURCES[p] for p in parts if p in RESOURCES), None)
    by_name = {
        "client_id": objects["client_id"], "datasource_type": "table", "user_id": objects["user"],
        "table_name": "notes", "schema_name": "main", "column_name": "region", "filename": "x.csv",
        "digest": "0", "cache_key": "0", "key": "0", "datasource_id": objects["dataset"],
    }

    def value(match):
        name = match.group(1).split(":")[-1]
        if name in by_name:
            return str(by_name[name])
        return str(objects.get(resource, 1)) if resource else "1"

    return re.sub(r"<([^>]+)>", value, rule)


def is_file(r) -> bool:
    return bool(FILE_TYPES.match(r.headers.get("Content-Type", ""))) or "attachment" in r.headers.get(
        "Content-Disposition", ""
    ).lower()


def refused(r) -> bool:
    if r.status_code in (301, 302, 303, 307, 308):
        return "login" in r.headers.get("Location", "")
    return r.status_code in (401, 403, 404, 405)


def data_out(route) -> bool:
    if route["endpoint"] in STATIC:
        return False
    fixed = re.sub(r"<[^>]*>", "", route["rule"])
    names = (route["endpoint"].rsplit(".", 1)[-1], fixed)
    perms = (route["permission"] or "", route["view_menu"] or "")
    return any(DATA_OUT_NAME.search(n) for n in names) or any(DATA_OUT_PERMISSION.search(p) for p in perms)


def call(session, method, path, objects, **kwargs):
    http, base, csrf = superset_api(session)
    headers = {"X-CSRFToken": csrf, "Referer": base + "/sqllab/"}
    return http.request(method, base + path, headers=headers, allow_redirects=False, timeout=120, **kwargs)


def test_the_routes_come_from_the_app_with_their_permissions(routes):
    by_rule = {(r["rule"], m): r for r in routes for m in r["methods"]}
    streaming = by_rule[("/api/v1/sqllab/export_streaming/", "POST")]
    # the hole this test was written for: export checked only as "read" on SQL Lab
    assert (streaming["permission"], streaming["view_menu"]) == ("can_read", "SQLLab")
    assert data_out(streaming)


def test_every_data_out_route_is_refused_to_the_sandbox(session, routes, objects):
    checked, leaks = [], []
    for route in filter(data_out, routes):
        for method in route["methods"]:
            path = fill(route["rule"], objects)
            ids = ",".join(str(objects[k]) for k in ("chart", "dashboard", "dataset", "saved_query", "database"))
            params = {"q": f"!({ids})"}
            if method == "GET":
                r = call(session, method, path, objects, params=params)
            else:
                r = call(
                    session, method, path, objects, params=params,
                    data={"client_id": objects["client_id"], "filename": "x.csv"},
                    files={"file": ("x.csv", b"id,region\n9,west\n", "text/csv")},
                )
            checked.append(f"{method} {route['rule']}")
            if not refused(r) or is_file(r) or "north" in r.text:
                leaks.append(f"{method} {path}: {r.status_code} {r.headers.get('Content-Type')} {r.text[:120]!r}")
    assert "POST /api/v1/sqllab/export_streaming/" in checked
    assert "GET /api/v1/sqllab/export/<string:client_id>/" in checked
    assert len(checked) >= 20, checked
    assert leaks == []


def test_no_route_of_the_app_answers_the_sandbox_with_a_file(session, routes, objects):
    """Every GET and POST route, whatever its name: a file in the answer is a leak.
    (PUT and DELETE change or remove objects; they answer no data.)"""
    csv_body = json.dumps(chart_data_body(objects, "csv"))
    leaks, tried = [], 0
    for route in routes:
        if route["endpoint"] in STATIC or "logout" in route["rule"]:
            continue
        path = fill(route["rule"], objects)
        if "GET" in route["methods"]:
            for params in ({}, {"format": "csv", "result_format": "xlsx", "csv": "true", "xlsx": "true"}):
                r = call(session, "GET", path, objects, params=params)
                tried += 1
                if is_file(r):
                    leaks.append(f"GET {path} {params}: {r.status_code} {r.headers.get('Content-Type')}")
        if "POST" in route["methods"]:
            for body in ({"json": {}}, {"data": {"client_id": objects["client_id"], "form_data": csv_body}}):
                r = call(session, "POST", path, objects, **body)
                tried += 1
                if is_file(r):
                    leaks.append(f"POST {path} {list(body)}: {r.status_code} {r.headers.get('Content-Type')}")
    assert tried > 300
    assert leaks == []


def chart_data_body(objects, result_format):
    return {
        "datasource": {"id": objects["dataset"], "type": "table"},
        "queries": [{"columns": ["id", "region"], "metrics": [], "row_limit": 10}],
        "result_format": result_format,
        "result_type": "full",
    }


@pytest.mark.parametrize("result_format", ["csv", "xlsx"])
def test_chart_data_in_a_file_format_is_refused_and_json_is_not(session, routes, objects, result_format):
    assert any(DATA_ROUTE.search(r["endpoint"]) and r["rule"] == "/api/v1/chart/data" for r in routes)
    shown = call(session, "POST", "/api/v1/chart/data", objects, json=chart_data_body(objects, "json"))
    assert shown.status_code == 200, shown.text  # the sandbox sees its data on screen
    assert "north" in shown.text
    r = call(session, "POST", "/api/v1/chart/data", objects, json=chart_data_body(objects, result_format))
    assert refused(r) and not is_file(r) and "north" not in r.text, (r.status_code, r.headers)
    legacy = call(
        session, "POST", "/api/v1/chart/data", objects,
        data={"form_data": json.dumps(chart_data_body(objects, result_format))},
    )
    assert refused(legacy) and not is_file(legacy), (legacy.status_code, legacy.headers)
    by_chart = call(session, "GET", f"/api/v1/chart/{objects['chart']}/data/", objects, params={"format": result_format})
    assert refused(by_chart) and not is_file(by_chart), (by_chart.status_code, by_chart.headers)


# -- SQL Lab on SQLite stays inside the space's file ---------------------------


@pytest.mark.parametrize(
    "statements",
    [
        ["ATTACH DATABASE '{target}' AS x", "CREATE TABLE x.t AS SELECT * FROM notes"],
        ["VACUUM INTO '{target}'"],
        ["SELECT load_extension('{target}')"],
        ["PRAGMA writable_schema = 1"],
        ["PRAGMA temp_store_directory = '{folder}'"],
    ],
)
def test_sql_lab_on_sqlite_reaches_no_other_file(session, space_files, tmp_path, statements):
    collab = database_ids(session)["collaborative"]
    target = tmp_path / "taken.sqlite"
    for sql in statements:
        r = run_sql(
            session, collab, sql.format(target=target, folder=tmp_path), "at" + uuid.uuid4().hex[:8]
        )
        assert r.status_code != 200, (sql, r.text)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_sql_lab_still_writes_the_space_database(session, space_files):
    """The control: the refusals above are the guard's, not a read-only database's."""
    collab = database_ids(session)["collaborative"]
    r = run_sql(session, collab, "CREATE TABLE notes_copy AS SELECT * FROM notes", "ok" + uuid.uuid4().hex[:8])
    assert r.status_code == 200, r.text
    r = run_sql(session, collab, "SELECT count(*) AS n FROM notes_copy", "ok" + uuid.uuid4().hex[:8])
    assert r.status_code == 200 and r.json()["data"] == [{"n": 2}], r.text
    r = run_sql(session, collab, "PRAGMA table_info(notes)", "ok" + uuid.uuid4().hex[:8])
    assert r.status_code == 200, r.text
