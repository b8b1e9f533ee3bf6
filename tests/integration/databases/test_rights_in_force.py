"""A change that narrows a member's rights is in force when the API answers: tried by
writing with the old rights straight after the answer, on SQLite and PostgreSQL.

A real hub, proxy, spaces service and LocalSpaceSpawner for the demo catalog. bob
is an editor of *Retail forecasting* with full subscriptions (a workbench). The
service's periodic run is off here (``reconcile_interval = 0``), so nothing but the
request itself (and, for an expiry, the expiry timer) can have acted.

On PostgreSQL, "in force" means bob's login from his session's ``databases.json``
can neither connect nor keep using a connection it opened before; on SQLite the
database files have no users, so it means bob's session is gone (the session's own
file permissions are the wall there).
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from spaces_hub import API, api_json
from jupyterhub_spaces.utils import utcnow

from wired_hub import activate, session_databases, space_id, start_wired_hub, wait_status

pytestmark = pytest.mark.slow

SLUG = "retail-forecasting"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hub(request, tmp_path_factory):
    yield from start_wired_hub(
        request.param, tmp_path_factory, spaces_config="c.SpaceDatabases.reconcile_interval = 0\n"
    )


def running(h, user) -> bool:
    server = h.hub_api("GET", f"/users/{user}").json()["servers"].get(SLUG)
    return bool(server) and bool(server.get("ready")) and not server.get("pending")


def gone(h, user) -> bool:
    """The session is stopped, not merely asked to stop."""
    server = h.hub_api("GET", f"/users/{user}").json()["servers"].get(SLUG)
    return server is None or server.get("stopped") or (not server.get("ready") and not server.get("pending"))


class OldRights:
    """bob's session and, on PostgreSQL, a connection it opened with its login."""

    def __init__(self, h, sid):
        self.h = h
        self.client, _ = activate(h, "bob", sid)
        self.doc = session_databases(h, "bob", SLUG)
        assert not self.doc["collaborative"]["read_only"]  # an editor's
        self.conn = None
        if h.backend == "postgresql":
            self.conn = psycopg.connect(self.doc["collaborative"]["url"], autocommit=True, connect_timeout=5)
            self.conn.execute("CREATE TABLE IF NOT EXISTS bob_writes (n int)")
            self.conn.execute("INSERT INTO bob_writes VALUES (1)")

    def assert_taken_back(self):
        """Straight after the answer: nothing of the old rights works any more."""
        assert gone(self.h, "bob"), self.h.hub_api("GET", "/users/bob").json()["servers"]
        if self.conn is not None:
            with pytest.raises(psycopg.OperationalError):
                self.conn.execute("INSERT INTO bob_writes VALUES (2)")
            self.conn.close()
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(self.doc["collaborative"]["url"], connect_timeout=5)

    def close(self):
        if self.conn is not None and not self.conn.closed:
            self.conn.close()


def suspend(h, sid):
    client = h.token_session("bob")
    if running(h, "bob"):
        client.post(f"{API}spaces/{sid}/suspend")
        wait_status(client, sid, "suspended")


def stops(h, reason_start: str) -> list[dict]:
    events = api_json(h.token_session("admin").get(f"{API}audit?action=session.stop"))["items"]
    return [e for e in events if e["detail"]["user"] == "bob" and e["detail"]["reason"].startswith(reason_start)]


def test_demotion_is_in_force_before_the_answer(hub):
    sid = space_id(hub, SLUG)
    alice = hub.token_session("alice")
    url = f"{API}spaces/{sid}/collaborators/bob"
    old = OldRights(hub, sid)
    try:
        r = alice.patch(url, json={"role": "viewer"})
        assert r.status_code == 200 and r.json()["role"] == "viewer", r.text
        old.assert_taken_back()
    finally:
        old.close()
    assert stops(hub, "role changed from editor to viewer")
    status = wait_status(hub.token_session("bob"), sid, "suspended")
    assert "role changed from editor to viewer" in status["reason"]

    # activated again, bob is a viewer in the databases too
    activate(hub, "bob", sid)
    doc = session_databases(hub, "bob", SLUG)
    assert doc["collaborative"]["read_only"]
    if hub.backend == "postgresql":
        with psycopg.connect(doc["collaborative"]["url"], autocommit=True, connect_timeout=5) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("INSERT INTO bob_writes VALUES (3)")

    # a promotion takes nothing away: the running session goes on
    assert alice.patch(url, json={"role": "editor"}).status_code == 200
    assert running(hub, "bob")
    suspend(hub, sid)


def _bobs_subscription(h, product: str, full: bool = False):
    admin = h.token_session("admin")
    mine = api_json(admin.get(f"{API}subscriptions?user=bob"))["items"]
    [sub] = [s for s in mine if s["target"]["name"] == product]
    return sub if full else f"{API}subscriptions/{sub['id']}"


@pytest.mark.parametrize(
    "method, change, reason",
    [
        ("PATCH", {"level": "spaces"}, "the session started as workbench but the rules now give sandbox"),
        ("PATCH", {"status": "revoked"}, "locked"),
        ("PATCH", {"expires_at": (utcnow() - timedelta(minutes=1)).isoformat() + "Z"}, "locked"),
        # an admin's grant over the existing subscription, at a lower level
        ("POST", {"user": "bob", "level": "spaces"}, "the session started as workbench but the rules now give sandbox"),
    ],
)
def test_subscription_changes_are_in_force_before_the_answer(hub, method, change, reason):
    sid = space_id(hub, SLUG)
    admin = hub.token_session("admin")
    url = _bobs_subscription(hub, "retail-sales")
    old = OldRights(hub, sid)
    try:
        if method == "POST":
            target = _bobs_subscription(hub, "retail-sales", full=True)["target"]
            r = admin.post(f"{API}subscriptions", json={**change, "product_id": target["id"]})
        else:
            r = admin.patch(url, json=change)
        assert r.status_code == 200, r.text
        old.assert_taken_back()
    finally:
        old.close()
        admin.patch(url, json={"level": "full", "status": "active", "expires_at": None})
    assert stops(hub, reason)
    suspend(hub, sid)


def test_an_expiry_is_acted_on_at_its_time(hub):
    """No request comes when a subscription expires: the service's expiry timer
    stops the session and takes the login back (the periodic run is off here)."""
    sid = space_id(hub, SLUG)
    admin = hub.token_session("admin")
    url = _bobs_subscription(hub, "weather")
    old = OldRights(hub, sid)
    try:
        soon = (utcnow() + timedelta(seconds=4)).isoformat() + "Z"
        assert admin.patch(url, json={"expires_at": soon}).status_code == 200
        assert running(hub, "bob")  # not expired yet: nothing changes
        status = wait_status(hub.token_session("bob"), sid, "suspended", timeout=120)
        assert status["reason"].startswith("locked"), status
        old.assert_taken_back()
    finally:
        old.close()
        admin.patch(url, json={"expires_at": None})
    assert stops(hub, "locked")
