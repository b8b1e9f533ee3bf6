"""The whole path: alice activates her demo space "Retail forecasting" (tools
JupyterLab and SQL Lab) through the spaces service on a real hub with
LocalSpaceSpawner; the service reports SQL Lab ready, and she opens it through the
hub's proxy and queries her assets. One hub and one Superset for the module."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from jupyterhub_spaces import demo
from spaces_hub import API, api_json
from test_activation import space_id, start_space_hub, suspend_all, wait_status
from tools_session import START_LIMIT, superset_installed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not superset_installed(),
        reason="Superset's virtualenv is missing: run scripts/setup.d/50-superset.sh",
    ),
]

SPACE = "retail-forecasting"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = start_space_hub(tmp_path_factory.mktemp("tools-hub"))
    yield h
    suspend_all(h, "alice")
    h.stop()
    h.store.dispose()


def wait_tool(client, sid: int, name: str) -> dict:
    deadline = time.monotonic() + START_LIMIT
    while True:
        tools = {t["name"]: t for t in api_json(client.get(f"{API}spaces/{sid}/tools"))["tools"]}
        tool = tools[name]
        assert tool["status"] != "unavailable", tool
        if tool["status"] == "ready":
            return tool
        assert time.monotonic() < deadline, tools
        time.sleep(1)


def test_alice_opens_sql_lab_from_her_active_space_and_queries_her_assets(hub):
    alice = hub.token_session("alice")
    sid = space_id(hub, SPACE)
    r = alice.post(f"{API}spaces/{sid}/activate")
    assert r.status_code in (200, 202), r.text
    assert wait_status(alice, sid, "active")["mode"] == "workbench"

    sqllab = wait_tool(alice, sid, "sqllab")
    match = re.fullmatch(rf"/user/alice/space-{sid}/superset/sqllab/\?dbid=(\d+)", sqllab["url"])
    assert match, sqllab
    dbid = int(match.group(1))

    # in the browser, through the hub's proxy and the session's OAuth
    browser = hub.browser("alice")
    page = browser.get(sqllab["url"])
    assert page.status_code == 200, page.url
    assert f"/user/alice/space-{sid}/superset/static/" in page.text

    # Superset knows her as alice, whatever header she sends
    base = f"/user/alice/space-{sid}/superset"
    me = alice.get(base + "/api/v1/me/", headers={"X-Spaces-User": "mallory"})
    assert me.json()["result"]["username"] == "alice"

    # a SQL Lab query on her Asset database returns her data
    daily_sales = next(
        a for p in demo.PRODUCTS for a in p.assets if a.location == "retail_daily_sales"
    )
    expected = len(demo.read_rows(daily_sales))
    csrf = alice.get(base + "/api/v1/security/csrf_token/").json()["result"]
    body = {
        "database_id": dbid,
        "sql": "SELECT COUNT(*) AS n FROM retail_daily_sales",
        "client_id": "e2e" + uuid.uuid4().hex[:6],
        "runAsync": False,
        "schema": None,
        "tab": "e2e",
        "sql_editor_id": "1",
        "queryLimit": 100,
    }
    r = alice.post(
        base + "/api/v1/sqllab/execute/", json=body, headers={"X-CSRFToken": csrf}, timeout=120
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"n": expected}]
