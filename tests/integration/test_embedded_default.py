"""The embedded default as ``make demo`` runs it: ``hub_config/jupyterhub_config.py``
unchanged, only its ports and ``var/`` directory moved (random free ports, a temporary
directory), with the real proxy and the spaces service managed by the hub.
"""

from __future__ import annotations

import html
from urllib.parse import urlparse

import pytest
from sqlalchemy import select

from demo_hub import demo_hub  # noqa: F401  (the fixture)

from jupyterhub_spaces import orm
from jupyterhub_spaces.store import Store

pytestmark = pytest.mark.slow



def demo_password(hub) -> str:
    return (hub.var / "demo-password").read_text().strip()


def test_password_is_printed_at_start(demo_hub):
    password = demo_password(demo_hub)
    assert len(password) >= 16
    assert f"password: {password}" in demo_hub.log()


@pytest.mark.parametrize(
    "user, org, admin", [("alice", "northwind", False), ("dave", "contoso", False), ("admin", "northwind", True)]
)
def test_demo_user_lands_on_the_spaces_app(demo_hub, user, org, admin):
    s, r = demo_hub.login(user, demo_password(demo_hub))
    assert urlparse(r.url).path == "/services/spaces/", [h.url for h in r.history] + [r.url]
    # the service knows them through the hub's OAuth, and sees the admin role
    me = s.get(f"{demo_hub.url}/services/spaces/login?next=/services/spaces/api/v1/me", timeout=30)
    assert me.status_code == 200, me.text[:300]
    assert (me.json()["name"], me.json()["org"], me.json()["admin"]) == (user, org, admin)
    # and the page they landed on is the Spaces app
    assert r.status_code == 200, r.text[:300]


@pytest.mark.parametrize(
    "user, password",
    [("alice", "not-the-password"), ("mallory", None), ("alice", "")],
    ids=["wrong-password", "unknown-user", "empty-password"],
)
def test_login_refused(demo_hub, user, password):
    s, r = demo_hub.login(user, demo_password(demo_hub) if password is None else password)
    assert urlparse(r.url).path == "/hub/login"
    assert "Invalid username or password" in html.unescape(r.text)
    assert s.get(f"{demo_hub.url}/hub/home", allow_redirects=False, timeout=30).status_code == 302


def test_first_start_loaded_the_demo_catalog(demo_hub):
    store = Store(f"sqlite:///{demo_hub.var / 'spaces.sqlite'}")
    try:
        with store.transaction() as db:
            slugs = set(db.scalars(select(orm.Space.slug)))
            users = {u.name: u.org.name for u in db.scalars(select(orm.User))}
    finally:
        store.dispose()
    assert {"retail-forecasting", "store-footprint", "weather-trends"} <= slugs
    assert users["alice"] == "northwind" and users["dave"] == "contoso"
    assert (demo_hub.var / "data" / "retail-sales" / "stores" / "stores.csv").exists()
    assert (demo_hub.var / "sources.sqlite").exists()


def test_restart_keeps_the_password(demo_hub):
    before = demo_password(demo_hub)
    demo_hub.stop()
    demo_hub.start()
    assert demo_password(demo_hub) == before
    s, r = demo_hub.login("bob", before)
    assert urlparse(r.url).path.startswith("/services/spaces/")
