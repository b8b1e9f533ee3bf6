"""The space databases in real sessions: a real hub and proxy, the spaces service and
LocalSpaceSpawner starting JupyterLab for the demo catalog, with the SQLite backend
and with the PostgreSQL one.

alice writes a table in the Collaborative database of *Retail forecasting*, bob reads
it from his own session, alice publishes a result: it appears in the catalog with its
lineage, as JSON and as a picture. Connection details are read from the file each
session gets (through the session's own contents API), as code in the session would.
"""

from __future__ import annotations

from xml.etree import ElementTree

import psycopg
import pytest
import sqlalchemy as sa

from spaces_hub import API, api_json
from jupyterhub_spaces import orm

from wired_hub import activate, engine, session_databases, space_id, start_wired_hub, wait_status

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def wired_hub(request, tmp_path_factory):
    yield from start_wired_hub(request.param, tmp_path_factory)


def test_collaborate_publish_and_see_lineage(wired_hub):
    h = wired_hub
    sid = space_id(h, "retail-forecasting")
    alice, alice_url = activate(h, "alice", sid)
    mine = session_databases(h, "alice", "retail-forecasting")
    assert set(mine) == {"asset", "collaborative", "publish"}
    assert mine["asset"]["read_only"] and not mine["collaborative"]["read_only"]

    # the Asset database holds the space's two table assets, read-only
    e = engine(mine, "asset")
    with e.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM retail_daily_sales")).scalar() > 0
        assert conn.execute(sa.text("SELECT count(*) FROM weather_daily")).scalar() > 0
        with pytest.raises(sa.exc.DBAPIError):
            conn.execute(sa.text("DELETE FROM weather_daily"))
    e.dispose()

    # alice writes in the Collaborative database ...
    e = engine(mine, "collaborative")
    with e.begin() as conn:
        conn.execute(sa.text("CREATE TABLE store_notes (store_id text, note text)"))
        conn.execute(sa.text("INSERT INTO store_notes VALUES ('LDS', 'busy after rain')"))
    e.dispose()

    # ... and bob, an editor, reads it in his own session with his own credentials
    bob, bob_url = activate(h, "bob", sid)
    his = session_databases(h, "bob", "retail-forecasting")
    if h.backend == "postgresql":
        assert his["collaborative"]["details"]["user"] != mine["collaborative"]["details"]["user"]
    e = engine(his, "collaborative")
    with e.connect() as conn:
        rows = conn.execute(sa.text("SELECT store_id, note FROM store_notes")).fetchall()
    e.dispose()
    assert [tuple(r) for r in rows] == [("LDS", "busy after rain")]

    # alice publishes a result from the Publish database
    e = engine(mine, "publish")
    with e.begin() as conn:
        conn.execute(sa.text("CREATE TABLE rain_effect (store_id text, uplift real)"))
        conn.execute(sa.text("INSERT INTO rain_effect VALUES ('LDS', 0.12), ('YRK', 0.05)"))
    e.dispose()
    refused = bob.post(f"{API}spaces/{sid}/publish", json={"table": "rain_effect", "name": "x"})
    assert refused.status_code == 403, refused.text  # an editor, not a publisher
    assert "publisher" in refused.json()["message"]
    missing = alice.post(f"{API}spaces/{sid}/publish", json={"table": "no_such", "name": "x"})
    assert missing.status_code == 404 and "Publish database" in missing.json()["message"]
    unnamed = alice.post(f"{API}spaces/{sid}/publish", json={"table": "rain_effect"})
    assert unnamed.status_code == 422 and "name" in unnamed.json()["fields"]
    stranger = h.token_session("dave").post(
        f"{API}spaces/{sid}/publish", json={"table": "rain_effect", "name": "x"})
    assert stranger.status_code == 404, stranger.text
    with h.store.transaction() as db:  # none of the refusals wrote anything
        assert not db.query(orm.Asset).filter_by(derived=True).count()
    r = alice.post(f"{API}spaces/{sid}/publish",
                   json={"table": "rain_effect", "name": "Rain effect on footfall"})
    assert r.status_code == 201, r.text
    published = r.json()
    assert published["derived"] and published["source_space_id"] == sid

    # in the catalog, with its lineage to both products of the space
    asset = api_json(alice.get(f"{API}catalog/assets/{published['id']}"))
    assert asset["name"] == "Rain effect on footfall"
    graph = api_json(alice.get(f"{API}assets/{published['id']}/lineage"))
    assert {n["name"] for n in graph["nodes"] if n["relation"] == "upstream"} == {"retail-sales", "weather"}
    nowhere = alice.get(f"{API}assets/999999/lineage")
    assert nowhere.status_code == 404 and nowhere.json()["message"] == "no asset with id 999999"
    svg = alice.get(f"{API}assets/{published['id']}/lineage.svg")
    assert svg.status_code == 200 and svg.headers["Content-Type"].startswith("image/svg+xml")
    names = {t.text for t in ElementTree.fromstring(svg.text).iter("{http://www.w3.org/2000/svg}text")}
    assert {"Rain effect on footfall", "retail-sales", "weather"} <= names

    # suspending takes the credentials back (PostgreSQL) and the file goes
    assert alice.post(f"{API}spaces/{sid}/suspend").status_code in (200, 202)
    wait_status(alice, sid, "suspended")
    assert not list(h.workdir.glob("homes/alice/retail-forecasting/.spaces/databases.json"))
    if h.backend == "postgresql":
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(mine["collaborative"]["url"], connect_timeout=5)

    # the owner removes bob: his running session stops and his login goes at once
    assert alice.delete(f"{API}spaces/{sid}/collaborators/bob").status_code == 204
    server = h.hub_api("GET", "/users/bob").json()["servers"].get("retail-forecasting")
    assert server is None or server["stopped"] or server["pending"] == "stop", server
    if h.backend == "postgresql":
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(his["collaborative"]["url"], connect_timeout=5)
    assert bob.get(f"{API}spaces/{sid}/status").status_code == 404
