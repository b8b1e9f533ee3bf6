"""A Workbench user's session: Superset and SQL Lab behind the session's Jupyter server
under /user/alice/sales/, one real Superset for the whole module."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urljoin

import pytest
import requests

from tools_session import ToolsSession, run_sql, superset_installed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not superset_installed(),
        reason="Superset's virtualenv is missing: run scripts/setup.d/50-superset.sh",
    ),
]


@pytest.fixture(scope="module")
def session(tmp_path_factory, asset_sqlite, rserver_dir):
    url, _ = asset_sqlite
    s = ToolsSession(
        tmp_path_factory.mktemp("alice") / "home",
        user="alice",
        space="sales",
        mode="workbench",
        tools="jupyterlab,superset,sqllab,rstudio",
        env={"SPACES_ASSET_DB_URL": url},
        path_prepend=rserver_dir,
    )
    s.start()
    try:
        s.wait_ready("superset")
        yield s
    finally:
        s.stop()


def asset_db_id(session) -> int:
    r = session.client.get(session.base + "sqllab/", allow_redirects=False)
    assert r.status_code == 302
    match = re.search(r"superset/sqllab/\?dbid=(\d+)$", r.headers["Location"])
    assert match, r.headers["Location"]
    return int(match.group(1))


def test_status_reports_every_selected_tool(session):
    tools = session.status()
    assert list(tools) == ["jupyterlab", "superset", "sqllab", "rstudio"]
    assert tools["superset"]["status"] == "ready"
    assert tools["superset"]["url"] == session.prefix + "superset/"
    assert tools["sqllab"]["status"] == "ready"
    assert tools["sqllab"]["url"].startswith(session.prefix + "superset/sqllab/?dbid=")
    assert tools["rstudio"]["status"] in ("ready", "waiting")


def test_status_needs_the_servers_authentication(session):
    r = requests.get(session.base + "spaces-tools/status")
    assert r.status_code == 403
    assert "tools" not in r.text


def test_superset_pages_and_static_assets_load_under_the_prefix(session):
    r = session.client.get(session.base + "superset/sqllab/")
    assert r.status_code == 200
    assert "text/html" in r.headers["Content-Type"]
    assets = re.findall(r'(?:src|href)="([^"]*/static/[^"]+)"', r.text)
    assert assets, "the page links no static files"
    # every static link stays inside the session prefix ...
    assert all(a.startswith(session.prefix + "superset/static/") for a in assets), assets
    # ... and is served there
    for path in [a for a in assets if a.endswith((".js", ".css"))][:4]:
        asset = session.client.get(urljoin(session.base, path))
        assert asset.status_code == 200, path
        assert len(asset.content) > 100
    # the logo is prefixed too (APP_ICON)
    logo = session.prefix + "superset/static/assets/images/superset-logo-horiz.png"
    assert logo in r.text
    assert session.client.get(urljoin(session.base, logo)).status_code == 200


def test_sqllab_opens_on_the_spaces_asset_database(session):
    dbid = asset_db_id(session)
    r = session.client.get(session.base + f"superset/api/v1/database/{dbid}")
    assert r.status_code == 200
    assert r.json()["result"]["database_name"] == "Space assets"
    assert r.json()["result"]["expose_in_sqllab"] is True


def test_sqllab_query_returns_rows_of_the_asset_database(session, asset_sqlite):
    _, rows = asset_sqlite
    r = run_sql(
        session,
        asset_db_id(session),
        "SELECT id, region, amount FROM sales ORDER BY id",
        "wb" + uuid.uuid4().hex[:8],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    assert [(d["id"], d["region"], d["amount"]) for d in body["data"]] == rows


def test_sqllab_without_csrf_token_is_refused(session):
    http, base = session.client, session.base + "superset"
    r = http.post(
        base + "/api/v1/sqllab/execute/",
        json={"database_id": asset_db_id(session), "sql": "SELECT 1", "client_id": "nocsrf01"},
    )
    assert r.status_code == 400
    assert "CSRF" in r.text


def test_the_asset_database_is_read_only_in_sqllab(session):
    r = run_sql(session, asset_db_id(session), "DELETE FROM sales", "del" + uuid.uuid4().hex[:8])
    assert r.status_code != 200 or r.json()["status"] != "success"
    assert "DML" in r.text or "read" in r.text.lower()


def test_a_remote_user_header_from_the_browser_is_ignored(session):
    spoof = {
        "X-Spaces-User": "mallory",
        "X-Spaces-Proxy-Token": "forged",
        "Remote-User": "mallory",
        "X-Remote-User": "mallory",
        "X-Forwarded-User": "mallory",
    }
    fresh = requests.Session()
    fresh.headers["Authorization"] = f"token {session.token}"
    r = fresh.get(session.base + "superset/api/v1/me/", headers=spoof)
    assert r.status_code == 200
    assert r.json()["result"]["username"] == "alice"


def test_superset_trusts_no_user_without_the_proxys_token(session):
    """Straight to Superset's socket, the user header alone gets nobody logged in."""
    import socket

    path = session.prefix + "superset/api/v1/me/"
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(session.runtime_dir + "/superset.sock")
        s.sendall(
            f"GET {path} HTTP/1.0\r\nHost: x\r\n"
            "X-Spaces-User: alice\r\nX-Spaces-Proxy-Token: forged\r\n\r\n".encode()
        )
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    status_line = reply.split(b"\r\n", 1)[0]
    assert b" 401 " in status_line, reply[:300]


def test_workbench_user_may_export_query_results_as_csv(session, asset_sqlite):
    client_id = "csv" + uuid.uuid4().hex[:8]
    assert (
        run_sql(
            session, asset_db_id(session), "SELECT id, region FROM sales ORDER BY id", client_id
        ).status_code
        == 200
    )
    r = session.client.get(session.base + f"superset/api/v1/sqllab/export/{client_id}/")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/csv")
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "id,region"
    assert lines[1:] == [f"{i},{region}" for i, region, _ in asset_sqlite[1]]


def test_rstudio_is_proxied_with_the_command_jupyter_rsession_proxy_would_run(session):
    r = session.client.get(session.base + "rstudio/")
    assert r.status_code in (200, 302)
    if r.headers.get("Content-Type", "").startswith("application/json"):
        # the stand-in rserver reports the flags it was started with
        flags = r.json()["flags"]
        assert flags["www-root-path"] == session.prefix + "rstudio/"
        assert flags["auth-none"] == "1"
        assert flags["server-user"] == "alice"
        assert flags["www-port"].isdigit()
    assert session.status()["rstudio"]["status"] == "ready"
