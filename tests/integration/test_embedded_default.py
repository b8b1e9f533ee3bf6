"""The embedded default as ``make demo`` runs it: ``hub_config/jupyterhub_config.py``
unchanged, only its ports and ``var/`` directory moved (random free ports, a temporary
directory), with the real proxy and the spaces service managed by the hub.
"""

from __future__ import annotations

import html
from urllib.parse import urlparse

import pytest
from sqlalchemy import select

from demo_hub import DemoHub

from jupyterhub_spaces import orm
from jupyterhub_spaces.store import Store

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    var = tmp_path_factory.mktemp("embedded") / "var"
    var.mkdir()
    hub = DemoHub(var)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def demo_password(hub) -> str:
    return (hub.var / "demo-password").read_text().strip()


def test_password_is_printed_at_start(embedded):
    password = demo_password(embedded)
    assert len(password) >= 16
    assert f"password: {password}" in embedded.log()


@pytest.mark.parametrize(
    "user, org, admin", [("alice", "northwind", False), ("dave", "contoso", False), ("admin", "northwind", True)]
)
def test_demo_user_lands_on_the_spaces_app(embedded, user, org, admin):
    s, r = embedded.login(user, demo_password(embedded))
    assert urlparse(r.url).path == "/services/spaces/", [h.url for h in r.history] + [r.url]
    # the service knows them through the hub's OAuth, and sees the admin role
    me = s.get(f"{embedded.url}/services/spaces/login?next=/services/spaces/api/v1/me", timeout=30)
    assert me.status_code == 200, me.text[:300]
    assert (me.json()["name"], me.json()["org"], me.json()["admin"]) == (user, org, admin)
    # and the page they landed on is the Spaces app
    assert r.status_code == 200, r.text[:300]


@pytest.mark.parametrize(
    "user, password",
    [("alice", "not-the-password"), ("mallory", None), ("alice", "")],
    ids=["wrong-password", "unknown-user", "empty-password"],
)
def test_login_refused(embedded, user, password):
    s, r = embedded.login(user, demo_password(embedded) if password is None else password)
    assert urlparse(r.url).path == "/hub/login"
    assert "Invalid username or password" in html.unescape(r.text)
    assert s.get(f"{embedded.url}/hub/home", allow_redirects=False, timeout=30).status_code == 302


def test_first_start_loaded_the_demo_catalog(embedded):
    store = Store(f"sqlite:///{embedded.var / 'spaces.sqlite'}")
    try:
        with store.transaction() as db:
            slugs = set(db.scalars(select(orm.Space.slug)))
            users = {u.name: u.org.name for u in db.scalars(select(orm.User))}
    finally:
        store.dispose()
    assert {"retail-forecasting", "store-footprint", "weather-trends"} <= slugs
    assert users["alice"] == "northwind" and users["dave"] == "contoso"
    assert (embedded.var / "data" / "retail-sales" / "stores" / "stores.csv").exists()
    assert (embedded.var / "sources.sqlite").exists()


def test_restart_keeps_the_password(embedded):
    before = demo_password(embedded)
    embedded.stop()
    embedded.start()
    assert demo_password(embedded) == before
    s, r = embedded.login("bob", before)
    assert urlparse(r.url).path.startswith("/services/spaces/")
