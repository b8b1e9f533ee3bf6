"""A Sandbox user's session: bob may query the space's data in SQL Lab but not take it
out (no CSV export, no download permissions). The Asset database is a real PostgreSQL
database when one answers, otherwise SQLite. One real Superset for the module."""

from __future__ import annotations

import re
import uuid

import pytest

from tools_session import ToolsSession, run_sql, superset_installed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not superset_installed(),
        reason="Superset's virtualenv is missing: run scripts/setup.d/50-superset.sh",
    ),
]


@pytest.fixture(scope="module")
def asset_db(asset_sqlite):
    """``(url, rows)``: PostgreSQL with the same rows as ``asset_sqlite`` if available."""
    from spaces_hub import postgres_available, postgres_database

    if not postgres_available():
        yield asset_sqlite
        return
    import psycopg

    with postgres_database("spaces_tools") as url:
        with psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
        ) as conn:
            conn.execute(
                "CREATE TABLE sales (id integer PRIMARY KEY, region text, amount double precision)"
            )
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO sales VALUES (%s, %s, %s)", asset_sqlite[1])
        yield url, asset_sqlite[1]


@pytest.fixture(scope="module")
def session(tmp_path_factory, asset_db):
    url, _ = asset_db
    s = ToolsSession(
        tmp_path_factory.mktemp("bob") / "home",
        user="bob",
        space="retail",
        mode="sandbox",
        tools="jupyterlab,sqllab,rstudio",
        env={"SPACES_ASSET_DB_URL": url},
    )
    s.start()
    try:
        s.wait_ready("sqllab")
        yield s
    finally:
        s.stop()


def asset_db_id(session) -> int:
    r = session.client.get(session.base + "sqllab/", allow_redirects=False)
    assert r.status_code == 302
    return int(re.search(r"dbid=(\d+)$", r.headers["Location"]).group(1))


def test_status_lists_what_the_space_selected_and_why_rstudio_is_missing(session):
    tools = session.status()
    assert list(tools) == ["jupyterlab", "sqllab", "rstudio"]
    assert tools["sqllab"]["status"] == "ready"
    assert tools["rstudio"]["status"] == "unavailable"
    assert "rserver" in tools["rstudio"]["reason"]


def test_an_unavailable_tool_answers_with_its_reason_not_a_500(session):
    r = session.client.get(session.base + "rstudio/")
    assert r.status_code == 503
    assert r.json()["error"] == "tool_unavailable"
    assert "RStudio Server is not installed" in r.json()["message"]
    launcher = session.client.get(session.base + "server-proxy/servers-info").json()
    names = {p["name"]: p["launcher_entry"]["enabled"] for p in launcher["server_processes"]}
    assert "rstudio" not in names
    # only SQL Lab was selected: Superset runs for it but gets no launcher entry
    assert names == {"sqllab": True, "superset": False}


def test_sandbox_user_has_the_sandbox_role(session):
    r = session.client.get(session.base + "superset/api/v1/me/roles/")
    assert r.status_code == 200
    result = r.json()["result"]
    assert result["username"] == "bob"
    assert list(result["roles"]) == ["Spaces Sandbox"]


def test_sandbox_user_can_query_the_asset_database(session, asset_db):
    r = run_sql(
        session,
        asset_db_id(session),
        "SELECT id, region, amount FROM sales ORDER BY id",
        "sb" + uuid.uuid4().hex[:8],
    )
    assert r.status_code == 200, r.text
    assert [(d["id"], d["region"], d["amount"]) for d in r.json()["data"]] == asset_db[1]


def test_sandbox_user_cannot_export_csv(session):
    client_id = "sbcsv" + uuid.uuid4().hex[:6]
    assert (
        run_sql(
            session, asset_db_id(session), "SELECT id, region FROM sales", client_id
        ).status_code
        == 200
    )
    r = session.client.get(session.base + f"superset/api/v1/sqllab/export/{client_id}/")
    assert r.status_code == 403
    assert "north" not in r.text


def test_sandbox_role_holds_no_export_or_download_permission(session):
    r = session.client.get(session.base + "superset/api/v1/me/roles/")
    perms = [tuple(p) for p in r.json()["result"]["roles"]["Spaces Sandbox"]]
    assert ("can_execute_sql_query", "SQLLab") in perms
    leaking = [p for p in perms if re.search(r"export|csv|download|upload", " ".join(p), re.I)]
    assert leaking == []
