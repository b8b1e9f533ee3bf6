"""Kept answers never outlive the change that makes them wrong.

The service keeps the answers of my spaces, one space and a space's access between
requests (``jupyterhub_spaces.service.answers``). Each test here asks for those
answers twice (the second is served again), makes one kind of change, and checks
that the very next answers show it: through the API (as users do) and straight in
the catalog database from this test's process (as another service process, the
command line or a site's own SQL would), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from spaces_hub import API, api_json
from sqlalchemy import select, update

from jupyterhub_spaces import orm
from jupyterhub_spaces.store import record_lineage

pytestmark = pytest.mark.slow


def answers(hub, user: str, space_id: int) -> dict:
    """What ``user`` is told about ``space_id``: its item in my spaces (None when not
    listed), the space itself and its access (each a status code when refused)."""
    client = hub.token_session(user)
    listing = api_json(client.get(API + "spaces"))
    out = {"item": next((s for s in listing["items"] if s["id"] == space_id), None),
           "total": listing["total"]}
    for name, path in (("space", f"spaces/{space_id}"), ("access", f"spaces/{space_id}/access")):
        r = client.get(API + path)
        out[name] = api_json(r) if r.status_code == 200 else r.status_code
    return out


def served_again(hub, users, space_id: int) -> dict:
    """Each user's answers, asked twice so the second comes from what the service
    kept; both must agree."""
    seen = {}
    for user in users:
        first = answers(hub, user, space_id)
        assert answers(hub, user, space_id) == first
        seen[user] = first
    return seen


def modes(seen: dict) -> dict:
    """(listed mode, access mode) per user; None for what they are refused."""
    return {
        user: (a["item"]["access"]["mode"] if a["item"] else None,
               a["access"]["mode"] if isinstance(a["access"], dict) else None)
        for user, a in seen.items()
    }


def members(seen_owner: dict) -> dict:
    return {m["user"]: m["mode"] for m in seen_owner["access"]["members"]}


def subscription_id(store, user: str, product: str) -> int:
    with store.transaction() as db:
        return db.scalar(
            select(orm.Subscription.id)
            .join(orm.User, orm.User.id == orm.Subscription.user_id)
            .join(orm.Product, orm.Product.id == orm.Subscription.product_id)
            .where(orm.User.name == user, orm.Product.name == product)
        )


# ---------------------------------------------------------------------------
# subscriptions


def test_a_granted_subscription_unlocks_at_once(hub, catalog):
    sid = catalog.space("retail-forecasting")
    before = served_again(hub, ["carol", "alice"], sid)
    assert modes(before)["carol"] == ("locked", "locked")
    assert members(before["alice"])["carol"] == "locked"

    r = hub.token_session("admin").post(
        API + "subscriptions", json={"product_id": catalog.product("weather"), "level": "full", "user": "carol"}
    )
    assert r.status_code == 201, r.text

    after = served_again(hub, ["carol", "alice"], sid)
    assert modes(after)["carol"] == ("workbench", "workbench")
    assert after["carol"]["space"]["access"]["mode"] == "workbench"
    assert members(after["alice"])["carol"] == "workbench"


def test_a_revoked_subscription_locks_at_once(hub, catalog, store):
    sid = catalog.space("retail-forecasting")
    before = served_again(hub, ["bob", "alice"], sid)
    assert modes(before)["bob"] == ("sandbox", "sandbox")

    r = hub.token_session("admin").patch(
        f"{API}subscriptions/{subscription_id(store, 'bob', 'retail-sales')}", json={"status": "revoked"}
    )
    assert r.status_code == 200, r.text

    after = answers(hub, "bob", sid)
    assert (after["item"]["access"]["mode"], after["access"]["mode"]) == ("locked", "locked")
    assert after["access"]["missing"][0]["reason"] == "revoked"
    assert members(answers(hub, "alice", sid))["bob"] == "locked"


def test_a_subscription_that_expires_locks_at_its_expiry(hub, catalog):
    """No write happens at the expiry: the kept answer ends by its own time bound."""
    sid = catalog.space("retail-forecasting")
    expires = (datetime.utcnow() + timedelta(seconds=4)).replace(microsecond=0)
    r = hub.token_session("admin").post(
        API + "subscriptions",
        json={"product_id": catalog.product("weather"), "level": "full", "user": "carol",
              "expires_at": expires.isoformat() + "Z"},
    )
    assert r.status_code == 201, r.text

    before = served_again(hub, ["carol", "alice"], sid)
    if datetime.utcnow() >= expires:
        pytest.fail("the machine took longer than the subscription's 4 s to answer twice")
    assert modes(before)["carol"] == ("workbench", "workbench")
    assert members(before["alice"])["carol"] == "workbench"

    time.sleep(max(0.0, (expires - datetime.utcnow()).total_seconds()) + 0.3)
    after = answers(hub, "carol", sid)
    assert (after["item"]["access"]["mode"], after["access"]["mode"]) == ("locked", "locked")
    assert after["space"]["access"]["mode"] == "locked"
    assert after["access"]["missing"][0]["reason"] == "expired"
    assert members(answers(hub, "alice", sid))["carol"] == "locked"


def test_a_subscription_changed_in_the_database_is_seen_at_once(hub, catalog, store):
    """A write from another process (here: this test's) is seen as well."""
    sid = catalog.space("retail-forecasting")
    assert modes(served_again(hub, ["bob"], sid))["bob"] == ("sandbox", "sandbox")
    with store.transaction() as db:
        db.execute(update(orm.Subscription).where(
            orm.Subscription.id == subscription_id(store, "bob", "retail-sales")).values(level="full"))
    assert modes({"bob": answers(hub, "bob", sid)})["bob"] == ("workbench", "workbench")


# ---------------------------------------------------------------------------
# members


def test_an_added_member_sees_the_space_at_once(hub, catalog):
    sid = catalog.space("store-footprint")
    before = served_again(hub, ["carol", "alice"], sid)
    assert (before["carol"]["item"], before["carol"]["space"], before["carol"]["access"]) == (None, 404, 404)
    assert set(members(before["alice"])) == {"alice"}

    r = hub.token_session("alice").post(f"{API}spaces/{sid}/collaborators", json={"user": "carol", "role": "viewer"})
    assert r.status_code == 201, r.text

    after = answers(hub, "carol", sid)
    assert after["total"] == before["carol"]["total"] + 1
    assert (after["item"]["role"], after["space"]["role"], after["access"]["role"]) == ("viewer",) * 3
    alice = answers(hub, "alice", sid)
    assert members(alice) == {"alice": "workbench", "carol": "workbench"}
    assert [c["user"] for c in alice["item"]["collaborators"]] == ["alice", "carol"]


def test_a_removed_member_loses_the_space_at_once(hub, catalog):
    sid = catalog.space("retail-forecasting")
    before = served_again(hub, ["bob", "alice"], sid)
    assert before["bob"]["item"]["role"] == "editor"

    r = hub.token_session("alice").delete(f"{API}spaces/{sid}/collaborators/bob")
    assert r.status_code == 204, r.text

    after = answers(hub, "bob", sid)
    assert (after["item"], after["space"], after["access"]) == (None, 404, 404)
    assert after["total"] == before["bob"]["total"] - 1
    assert "bob" not in members(answers(hub, "alice", sid))


def test_a_changed_role_is_seen_at_once(hub, catalog):
    sid = catalog.space("retail-forecasting")
    before = served_again(hub, ["carol", "alice"], sid)
    assert before["carol"]["item"]["role"] == "viewer"
    assert "members" not in before["carol"]["access"]

    r = hub.token_session("alice").patch(f"{API}spaces/{sid}/collaborators/carol", json={"role": "editor"})
    assert r.status_code == 200, r.text

    after = answers(hub, "carol", sid)
    assert (after["item"]["role"], after["space"]["role"], after["access"]["role"]) == ("editor",) * 3
    roles = {c["user"]: c["role"] for c in answers(hub, "alice", sid)["item"]["collaborators"]}
    assert roles["carol"] == "editor"


# ---------------------------------------------------------------------------
# data and the space itself


def _publish(store, catalog, source_space: int, name: str, sources: list[str]) -> int:
    """What publishing writes to the catalog, in one transaction: a derived asset and
    its lineage to the products it was made from."""
    with store.transaction() as db:
        asset = orm.Asset(
            name=name, kind="table", location=f"spaces_derived_{name}", derived=True,
            source_space_id=source_space, created_by="alice",
            owner_org_id=db.scalar(select(orm.User.org_id).where(orm.User.name == "alice")),
        )
        db.add(asset)
        db.flush()
        record_lineage(db, asset.id, [catalog.product(p) for p in sources], [])
        return asset.id


def test_a_published_asset_put_in_a_space_is_seen_at_once(hub, catalog, store):
    sid = catalog.space("store-footprint")
    alice = hub.token_session("alice")
    assert alice.post(f"{API}spaces/{sid}/collaborators", json={"user": "carol", "role": "viewer"}).status_code == 201
    before = served_again(hub, ["carol", "alice"], sid)
    assert modes(before)["carol"] == ("workbench", "workbench")

    asset = _publish(store, catalog, catalog.space("retail-forecasting"), "forecast", ["retail-sales", "weather"])
    stores = catalog.asset("retail-sales", "stores")
    r = alice.patch(f"{API}spaces/{sid}", json={"assets": [stores, asset]})
    assert r.status_code == 200, r.text

    after = answers(hub, "carol", sid)
    assert [a["name"] for a in after["item"]["assets"]] == ["stores", "forecast"]
    assert modes({"carol": after})["carol"] == ("locked", "locked")
    missing = after["access"]["missing"]
    assert [(m["name"], m["via"]["name"]) for m in missing] == [("weather", "forecast")]


def test_lineage_written_in_the_database_is_seen_at_once(hub, catalog, store):
    """The lineage of an asset a space holds decides access: lineage recorded after the
    asset was already in a space (in a transaction of its own) counts from the next
    answer on."""
    sid = catalog.space("store-footprint")
    alice = hub.token_session("alice")
    asset = _publish(store, catalog, catalog.space("retail-forecasting"), "footfall", [])
    with store.transaction() as db:  # without lineage, the asset's own subscription decides
        carol = db.scalar(select(orm.User.id).where(orm.User.name == "carol"))
        db.add(orm.Subscription(user_id=carol, asset_id=asset, level="full", status="active"))
    assert alice.post(f"{API}spaces/{sid}/collaborators", json={"user": "carol", "role": "viewer"}).status_code == 201
    assert alice.patch(f"{API}spaces/{sid}", json={"assets": [asset]}).status_code == 200
    assert modes(served_again(hub, ["carol"], sid))["carol"] == ("workbench", "workbench")

    with store.transaction() as db:
        record_lineage(db, asset, [catalog.product("retail-sales"), catalog.product("weather")], [])

    assert modes({"carol": answers(hub, "carol", sid)})["carol"] == ("locked", "locked")


def test_an_asset_renamed_in_the_catalog_is_seen_at_once(hub, catalog, store):
    sid = catalog.space("store-footprint")
    assert [a["name"] for a in served_again(hub, ["alice"], sid)["alice"]["item"]["assets"]] == ["stores"]
    with store.transaction() as db:
        db.execute(update(orm.Asset).where(orm.Asset.id == catalog.asset("retail-sales", "stores"))
                   .values(name="store-register"))
    after = answers(hub, "alice", sid)
    assert [a["name"] for a in after["item"]["assets"]] == ["store-register"]
    assert [a["name"] for a in after["space"]["assets"]] == ["store-register"]


def test_a_changed_space_is_seen_at_once(hub, catalog):
    sid = catalog.space("store-footprint")
    alice = hub.token_session("alice")
    assert alice.post(f"{API}spaces/{sid}/collaborators", json={"user": "carol", "role": "viewer"}).status_code == 201
    before = served_again(hub, ["carol", "alice"], sid)
    assert modes(before)["carol"] == ("workbench", "workbench")

    r = alice.patch(f"{API}spaces/{sid}", json={"display_name": "Store footprint and weather",
                                               "products": [catalog.product("weather")]})
    assert r.status_code == 200, r.text

    after = answers(hub, "carol", sid)
    assert after["item"]["display_name"] == after["space"]["display_name"] == "Store footprint and weather"
    assert [p["name"] for p in after["item"]["products"]] == ["weather"]
    assert modes({"carol": after})["carol"] == ("locked", "locked")
    assert members(answers(hub, "alice", sid))["carol"] == "locked"


def test_a_deleted_space_is_gone_at_once(hub, catalog):
    sid = catalog.space("store-footprint")
    before = served_again(hub, ["alice"], sid)
    assert before["alice"]["item"] is not None
    assert hub.token_session("alice").delete(f"{API}spaces/{sid}").status_code == 204
    after = answers(hub, "alice", sid)
    assert (after["item"], after["space"], after["access"]) == (None, 404, 404)
    assert after["total"] == before["alice"]["total"] - 1


def test_the_revision_row_cannot_be_deleted(store):
    """An answer kept under a revision could come back if the revision started over."""
    with pytest.raises(Exception, match="never deleted"):
        with store.transaction() as db:
            db.execute(orm.CatalogRevision.__table__.delete())
    with store.transaction() as db:
        assert db.scalar(select(orm.CatalogRevision.value)) >= 1
