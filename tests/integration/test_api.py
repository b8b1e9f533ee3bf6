"""The Spaces JSON API through the real hub and proxy, against SQLite and PostgreSQL,
as a browser user (OAuth cookie) and as a token client, on the demo catalog.

The demo story: alice owns Retail forecasting (both products) with bob as editor and
carol as viewer, and Store footprint; dave (another organization) owns Weather trends.
alice has full subscriptions (workbench), bob only a spaces-level one to retail-sales
(sandbox), carol none to weather (locked), dave sees nothing of alice's organization.
"""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator
from spaces_hub import API, api_json
from sqlalchemy import func, select

from jupyterhub_spaces import orm
from jupyterhub_spaces.service.openapi import document

COMPONENTS = document()["components"]


def conforms(body, schema: str):
    """Check a response body against its schema in the served OpenAPI document."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": COMPONENTS}
    Draft202012Validator(root).validate(body)
    return body

pytestmark = pytest.mark.slow


@pytest.fixture(params=["browser", "token"])
def via(request):
    return request.param


def call(hub, user, via="token"):
    return hub.clients(user)[via]


def audit_rows(store, **filters):
    with store.transaction() as db:
        rows = db.scalars(select(orm.AuditEvent).filter_by(**filters).order_by(orm.AuditEvent.id)).all()
        return [(r.actor, r.action, r.outcome, r.target_type, r.target_id, r.detail) for r in rows]


def assert_error(r, status, *phrases):
    body = api_json(r)
    assert r.status_code == status, body
    assert body["status"] == status
    assert set(body) <= {"status", "error", "message", "fields"}
    for phrase in phrases:
        assert phrase in body["message"], body
    return conforms(body, "Error")


# ---------------------------------------------------------------------------
# what each demo user sees


def test_each_user_sees_exactly_their_spaces(hub, catalog, via):
    expected = {
        "alice": {"retail-forecasting": "owner", "store-footprint": "owner"},
        "bob": {"retail-forecasting": "editor"},
        "carol": {"retail-forecasting": "viewer"},
        "dave": {"weather-trends": "owner"},
        "admin": {},
    }
    for user, spaces in expected.items():
        body = api_json(call(hub, user, via).get(API + "spaces"))
        assert {s["slug"]: s["role"] for s in body["items"]} == spaces, user
        assert body["total"] == len(spaces)


def test_access_decisions_follow_the_rules(hub, catalog, via):
    space = catalog.space("retail-forecasting")
    url = f"{API}spaces/{space}/access"

    alice = api_json(call(hub, "alice", via).get(url))
    assert (alice["mode"], alice["can_activate"], alice["missing"]) == ("workbench", True, [])

    bob = api_json(call(hub, "bob", via).get(url))
    assert bob["mode"] == "sandbox"
    assert bob["sandboxed_by"] == [
        {"kind": "product", "id": catalog.product("retail-sales"), "name": "retail-sales"}
    ]
    assert "members" not in bob  # only the owner sees everyone's decision

    carol = api_json(call(hub, "carol", via).get(url))
    assert carol["mode"] == "locked" and carol["can_activate"] is False
    assert [(m["kind"], m["name"], m["reason"]) for m in carol["missing"]] == [
        ("product", "weather", "missing")
    ]
    assert "request one in the catalog" in carol["reason"]

    r = call(hub, "dave", via).get(url)
    assert_error(r, 404, f"no space with id {space}")


def test_owner_sees_each_members_decision(hub, catalog):
    body = api_json(hub.token_session("alice").get(f"{API}spaces/{catalog.space('retail-forecasting')}/access"))
    assert {m["user"]: m["mode"] for m in body["members"]} == {
        "alice": "workbench",
        "bob": "sandbox",
        "carol": "locked",
    }


def test_a_stranger_cannot_tell_a_space_from_no_space(hub, catalog):
    dave = hub.token_session("dave")
    hidden = assert_error(dave.get(f"{API}spaces/{catalog.space('store-footprint')}"), 404)
    missing = assert_error(dave.get(f"{API}spaces/999999"), 404)
    assert hidden["message"].replace(str(catalog.space("store-footprint")), "N") == missing[
        "message"
    ].replace("999999", "N")
    assert_error(dave.get(f"{API}spaces/not-a-number"), 404, "ids are whole numbers")


def test_visibility_of_users(hub, catalog):
    names = lambda r: [u["name"] for u in api_json(r)["items"]]  # noqa: E731
    assert names(hub.token_session("alice").get(API + "users")) == ["admin", "alice", "bob", "carol"]
    assert names(hub.token_session("dave").get(API + "users")) == ["dave"]
    assert names(hub.token_session("alice").get(API + "users?q=car")) == ["carol"]
    assert names(hub.token_session("alice").get(API + "users?q=dave")) == []


def test_visibility_granted_by_an_admin_is_one_way(hub, catalog, store):
    with store.transaction() as db:
        ids = {o.name: o.id for o in db.scalars(select(orm.Organization))}
        db.add(orm.OrgVisibility(seer_id=ids["northwind"], seen_id=ids["contoso"]))
    assert "dave" in [u["name"] for u in api_json(hub.token_session("alice").get(API + "users"))["items"]]
    assert [u["name"] for u in api_json(hub.token_session("dave").get(API + "users"))["items"]] == ["dave"]
    space = catalog.space("store-footprint")
    r = hub.token_session("alice").post(f"{API}spaces/{space}/collaborators", json={"user": "dave", "role": "viewer"})
    assert r.status_code == 201, r.text


def test_catalog_shows_my_subscription_state(hub, catalog):
    body = api_json(hub.token_session("bob").get(API + "catalog/products"))
    products = {p["name"]: p for p in body["items"]}
    assert products["retail-sales"]["subscription"]["level"] == "spaces"
    assert products["retail-sales"]["subscription"]["active"] is True
    assert products["weather"]["subscription"]["level"] == "full"
    assert [a["name"] for a in products["retail-sales"]["assets"]] == ["daily-sales", "stores"]
    assert all(a["subscription"] is None for a in products["retail-sales"]["assets"])
    carol = {p["name"]: p for p in api_json(hub.token_session("carol").get(API + "catalog/products"))["items"]}
    assert carol["weather"]["subscription"] is None
    one = api_json(hub.token_session("carol").get(f"{API}catalog/products/{catalog.product('weather')}"))
    assert one["name"] == "weather" and one["owner_org"] == "contoso"
    assert_error(hub.token_session("carol").get(f"{API}catalog/products/424242"), 404, "no product with id 424242")


# ---------------------------------------------------------------------------
# creating and changing spaces


def test_create_read_update_delete(hub, catalog, store, via):
    alice = call(hub, "alice", via)
    r = alice.post(API + "spaces", json={
        "display_name": "Café sales & weather",
        "products": [catalog.product("weather")],
        "assets": [catalog.asset("retail-sales", "stores")],
        "tools": ["jupyterlab", "superset"],
    })
    body = api_json(r)
    assert r.status_code == 201, body
    assert body["slug"] == "cafe-sales-weather"
    assert body["role"] == "owner" and body["access"]["mode"] == "workbench"
    assert r.headers["Location"].endswith(f"/spaces/{body['id']}")
    sid = body["id"]

    # the same name again gets the next free slug
    again = api_json(alice.post(API + "spaces", json={"display_name": "Cafe sales weather"}))
    assert again["slug"] == "cafe-sales-weather-2"

    r = alice.patch(f"{API}spaces/{sid}", json={"display_name": "Renamed", "products": []})
    assert r.status_code == 200, r.text
    assert api_json(alice.get(f"{API}spaces/{sid}"))["display_name"] == "Renamed"
    assert api_json(alice.get(f"{API}spaces/{sid}"))["products"] == []
    assert api_json(alice.get(f"{API}spaces/{sid}"))["slug"] == "cafe-sales-weather"

    assert alice.delete(f"{API}spaces/{sid}").status_code == 204
    assert_error(alice.get(f"{API}spaces/{sid}"), 404)
    actions = [a[1] for a in audit_rows(store, actor="alice")]
    assert actions == ["space.create", "space.create", "space.update", "space.delete"]


def test_roles_decide_who_may_change_a_space(hub, catalog, store, db_dump):
    sid = catalog.space("retail-forecasting")
    bob, carol = hub.token_session("bob"), hub.token_session("carol")

    before = db_dump(ignore=("audit_events",))
    assert_error(carol.patch(f"{API}spaces/{sid}", json={"description": "x"}), 403,
                 "you are viewer", "editor or owner")
    assert_error(bob.delete(f"{API}spaces/{sid}"), 403, "you are editor", "must be owner")
    assert_error(bob.post(f"{API}spaces/{sid}/collaborators", json={"user": "admin", "role": "viewer"}), 403)
    assert db_dump(ignore=("audit_events",)) == before
    refused = [(a[0], a[1]) for a in audit_rows(store, outcome="refused")]
    assert refused == [("carol", "space.edit"), ("bob", "space.delete"), ("bob", "space.manage_collaborators")]

    r = bob.patch(f"{API}spaces/{sid}", json={"description": "edited by bob"})
    assert r.status_code == 200 and api_json(r)["description"] == "edited by bob"


def test_collaborators_lifecycle(hub, catalog, store):
    sid = catalog.space("store-footprint")
    alice = hub.token_session("alice")
    url = f"{API}spaces/{sid}/collaborators"
    r = alice.post(url, json={"user": "carol", "role": "editor"})
    assert r.status_code == 201, r.text
    assert_error(alice.post(url, json={"user": "carol", "role": "viewer"}), 409, "already a member")
    r = alice.patch(f"{url}/carol", json={"role": "publisher"})
    assert api_json(r)["role"] == "publisher"
    assert_error(alice.patch(f"{url}/alice", json={"role": "viewer"}), 409, "owner")
    assert_error(alice.patch(f"{url}/carol", json={"role": "owner"}), 422)
    assert_error(alice.delete(f"{url}/bob"), 404, "bob is not a member")
    # carol may leave on her own
    assert hub.token_session("carol").delete(f"{url}/carol").status_code == 204
    assert [c["user"] for c in api_json(alice.get(url))["items"]] == ["alice"]
    assert [a[1] for a in audit_rows(store, target_type="space", target_id=str(sid), outcome="ok")] == [
        "collaborator.add", "collaborator.update", "collaborator.remove"
    ]


# ---------------------------------------------------------------------------
# bad input: right status, a useful message, and nothing changed


def test_bad_bodies(hub, catalog, store, db_dump, via):
    alice = call(hub, "alice", via)
    before = db_dump()
    cases = [
        ("{not json", 400, "not valid JSON", None),
        ("[1, 2]", 400, "must be a JSON object", None),
        ("", 400, "needs a JSON object body", None),
        ({"display_name": 5}, 422, "display_name", {"display_name"}),
        ({"display_name": "x", "tools": "jupyterlab"}, 422, "tools", {"tools"}),
        ({"display_name": "x", "workers": "2"}, 422, "workers", {"workers"}),
        ({"display_name": "x", "workers": True}, 422, "workers", {"workers"}),
        ({"display_name": "x", "workers": 99}, 422, "workers", {"workers"}),
        ({"display_name": "x", "tools": ["emacs"]}, 422, "unknown tool", {"tools"}),
        ({"display_name": "x", "profile": "huge"}, 422, "unknown machine profile", {"profile"}),
        ({"display_name": "x", "colour": "red"}, 422, "unknown field", {"colour"}),
        ({"display_name": "  "}, 422, "no visible character", {"display_name"}),
        ({"display_name": "x", "products": [424242]}, 422, "no product with id 424242", {"products"}),
        ({"display_name": "x", "assets": [1, 1]}, 422, "more than once", {"assets"}),
        ({"display_name": "x", "slug": "Bad Slug"}, 422, "slug", {"slug"}),
    ]
    for payload, status, phrase, fields in cases:
        if isinstance(payload, str):
            r = alice.post(API + "spaces", data=payload, headers={"Content-Type": "application/json"})
        else:
            r = alice.post(API + "spaces", json=payload)
        body = assert_error(r, status, phrase)
        if fields:
            assert set(body["fields"]) == fields, body
    assert db_dump() == before


def test_the_sixteenth_space_is_refused(hub, catalog, store, db_dump, via):
    alice = call(hub, "alice", via)
    for i in range(13):  # alice owns 2 demo spaces
        assert alice.post(API + "spaces", json={"display_name": f"Space {i}"}).status_code == 201
    before = db_dump(ignore=("audit_events",))
    body = assert_error(alice.post(API + "spaces", json={"display_name": "One too many"}), 409,
                        "you already own 15 spaces", "delete a space")
    assert "fields" not in body
    assert db_dump(ignore=("audit_events",)) == before
    assert audit_rows(store, action="space.create", outcome="refused")[-1][5]["owned"] == 15
    assert api_json(alice.get(API + "me"))["spaces_owned"] == 15


def test_an_invisible_collaborator_looks_like_an_unknown_one(hub, catalog, store, db_dump):
    alice = hub.token_session("alice")
    url = f"{API}spaces/{catalog.space('retail-forecasting')}/collaborators"
    before = db_dump(ignore=("audit_events",))
    invisible = assert_error(alice.post(url, json={"user": "dave", "role": "viewer"}), 422, "'dave'")
    unknown = assert_error(alice.post(url, json={"user": "nobody", "role": "viewer"}), 422, "'nobody'")
    assert invisible["message"].replace("dave", "?") == unknown["message"].replace("nobody", "?")
    assert set(invisible["fields"]) == {"user"}
    assert_error(alice.post(url, json={"user": "bob", "role": "boss"}), 422, "unknown role")
    assert db_dump(ignore=("audit_events",)) == before
    assert [r[5]["user"] for r in audit_rows(store, action="collaborator.add", outcome="refused")] == ["dave", "nobody"]


def test_non_admins_cannot_grant_subscriptions(hub, catalog, store, db_dump, via):
    carol = call(hub, "carol", via)
    weather = catalog.product("weather")
    before = db_dump(ignore=("audit_events",))
    assert_error(carol.post(API + "subscriptions", json={"product_id": weather, "level": "full", "user": "carol"}),
                 403, "only spaces admins", "custom:spaces:admin")
    assert_error(carol.post(API + "subscriptions", json={"product_id": weather, "level": "full",
                                                         "expires_at": "2040-01-01T00:00:00Z"}), 403)
    with store.transaction() as db:
        bobs = db.scalar(select(orm.Subscription.id).join(orm.User).where(orm.User.name == "bob").limit(1))
    # carol cannot even see bob's subscription; with her own she is refused as a non-admin
    assert_error(carol.patch(f"{API}subscriptions/{bobs}", json={"status": "revoked"}), 403)
    assert_error(carol.get(f"{API}subscriptions/{bobs}"), 404)
    assert_error(carol.get(f"{API}subscriptions?user=bob"), 403)
    assert_error(carol.get(API + "audit"), 403, "read the audit log")
    assert db_dump(ignore=("audit_events",)) == before
    assert {r[1] for r in audit_rows(store, actor="carol", outcome="refused")} == {
        "subscription.grant", "subscription.update", "subscription.list", "audit.read"
    }


def test_subscription_request_grant_expire_revoke(hub, catalog, store, via):
    carol, admin = call(hub, "carol", via), call(hub, "admin", via)
    access = f"{API}spaces/{catalog.space('retail-forecasting')}/access"
    weather = catalog.product("weather")

    r = carol.post(API + "subscriptions", json={"product_id": weather, "level": "full"})
    assert r.status_code == 201, r.text
    sub = api_json(r)
    assert (sub["status"], sub["user"], sub["target"]["name"]) == ("requested", "carol", "weather")
    assert api_json(carol.get(access))["missing"][0]["reason"] == "requested"
    assert_error(carol.post(API + "subscriptions", json={"product_id": weather, "level": "full"}), 409,
                 "already requested")
    pending = api_json(admin.get(API + "subscriptions?user=*&status=requested"))["items"]
    assert [(s["user"], s["target"]["name"]) for s in pending] == [("carol", "weather")]

    r = admin.patch(f"{API}subscriptions/{sub['id']}", json={"status": "active", "expires_at": "2099-01-01T00:00:00Z"})
    assert api_json(r)["granted_by"] == "admin"
    assert api_json(carol.get(access))["mode"] == "workbench"

    admin.patch(f"{API}subscriptions/{sub['id']}", json={"expires_at": "2001-01-01T00:00:00Z"})
    locked = api_json(carol.get(access))
    assert (locked["mode"], locked["missing"][0]["reason"]) == ("locked", "expired")

    admin.patch(f"{API}subscriptions/{sub['id']}", json={"level": "spaces", "expires_at": None})
    assert api_json(carol.get(access))["mode"] == "sandbox"

    admin.patch(f"{API}subscriptions/{sub['id']}", json={"status": "revoked"})
    assert api_json(carol.get(access))["missing"][0]["reason"] == "revoked"

    # an admin grants straight to a user
    r = admin.post(API + "subscriptions", json={"asset_id": catalog.asset("retail-sales", "stores"),
                                                "level": "full", "user": "dave"})
    assert r.status_code == 201 and api_json(r)["status"] == "active"
    assert_error(admin.post(API + "subscriptions", json={"product_id": weather, "asset_id": 1, "level": "full"}),
                 422, "exactly one")
    assert_error(admin.post(API + "subscriptions", json={"product_id": weather, "level": "gold"}), 422, "level")
    assert_error(admin.patch(f"{API}subscriptions/{sub['id']}", json={"expires_at": "next tuesday"}), 422,
                 "ISO 8601")
    actions = [r[1] for r in audit_rows(store, outcome="ok") if r[1].startswith("subscription.")]
    assert actions == ["subscription.request", "subscription.grant", "subscription.update",
                       "subscription.update", "subscription.revoke", "subscription.grant"]


def test_withdraw_a_request(hub, catalog):
    carol = hub.token_session("carol")
    sub = api_json(carol.post(API + "subscriptions", json={"product_id": catalog.product("weather"), "level": "spaces"}))
    assert carol.delete(f"{API}subscriptions/{sub['id']}").status_code == 204
    assert api_json(carol.get(API + "subscriptions"))["total"] == 1  # her retail-sales one


def test_audit_log_filters_and_pages(hub, catalog):
    alice, admin = hub.token_session("alice"), hub.token_session("admin")
    for i in range(3):
        alice.post(API + "spaces", json={"display_name": f"Audit {i}"})
    body = api_json(admin.get(API + "audit?actor=alice&action=space.create&limit=2"))
    assert body["total"] == 3 and len(body["items"]) == 2
    assert [e["detail"]["slug"] for e in body["items"]] == ["audit-2", "audit-1"]  # newest first
    nxt = api_json(admin.get(body["next"]))
    assert [e["detail"]["slug"] for e in nxt["items"]] == ["audit-0"] and nxt["next"] is None
    assert api_json(admin.get(API + "audit?action=space."))["total"] == 3
    assert_error(admin.get(API + "audit?limit=0"), 422, "limit")
    assert_error(admin.get(API + "audit?limit=100000"), 422, "limit")
    assert_error(admin.get(API + "audit?offset=-1"), 422, "offset")


def test_a_space_with_a_running_session_cannot_be_deleted(hub, catalog, store, db_dump):
    sid = catalog.space("retail-forecasting")
    with store.transaction() as db:
        db.add(orm.Activation(space_id=sid, user_id=catalog.user("bob"), state="active", mode="sandbox"))
    before = db_dump(ignore=("audit_events",))
    assert_error(hub.token_session("alice").delete(f"{API}spaces/{sid}"), 409, "active for bob", "suspend")
    assert db_dump(ignore=("audit_events",)) == before


def test_first_call_of_a_new_hub_user_creates_no_org_row(hub, catalog, store):
    # a hub user the catalog does not know yet gets a row without organization and
    # sees nobody else
    with store.transaction() as db:
        db.execute(orm.Collaborator.__table__.delete().where(orm.Collaborator.user_id == catalog.user("admin")))
        db.execute(orm.Subscription.__table__.delete().where(orm.Subscription.user_id == catalog.user("admin")))
        db.execute(orm.User.__table__.delete().where(orm.User.name == "admin"))
    body = api_json(hub.token_session("admin").get(API + "users"))
    assert [u["name"] for u in body["items"]] == ["admin"] and body["items"][0]["org"] is None
    with store.transaction() as db:
        assert db.scalar(select(func.count()).select_from(orm.User).where(orm.User.name == "admin")) == 1


def test_responses_match_the_openapi_document(hub, catalog):
    alice, admin = hub.token_session("alice"), hub.token_session("admin")
    served = api_json(hub.token_session("dave").get(API + "openapi.json"))
    assert served == document()
    sid = catalog.space("retail-forecasting")
    for url, schema in [
        ("spaces", "Page"),
        (f"spaces/{sid}", "Space"),
        (f"spaces/{sid}/access", "Access"),
        ("catalog/products", "Page"),
        (f"catalog/products/{catalog.product('weather')}", "Product"),
        (f"catalog/assets/{catalog.asset('retail-sales', 'stores')}", "Asset"),
        ("users", "Page"),
        ("me", "Me"),
        ("subscriptions", "Page"),
    ]:
        body = conforms(api_json(alice.get(API + url)), schema)
        if schema == "Page":
            item = {"spaces": "Space", "catalog/products": "Product", "users": "User",
                    "subscriptions": "Subscription"}[url]
            assert body["items"], url
            for entry in body["items"]:
                conforms(entry, item)
    for entry in api_json(admin.get(API + "audit"))["items"]:
        conforms(entry, "AuditEvent")
    for entry in api_json(alice.get(f"{API}spaces/{sid}/collaborators"))["items"]:
        conforms(entry, "Collaborator")


def test_openapi_document_needs_no_login(hub):
    import requests

    r = requests.get(hub.url + API + "openapi.json", timeout=10)
    assert r.status_code == 200 and r.json()["openapi"].startswith("3.")


# ---------------------------------------------------------------------------
# hostile input: always a JSON 4xx that says what was wrong, never a 500, nothing changed

DEEP = b'{"display_name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
HUGE = 2**64


def hostile_requests(catalog) -> list[tuple[str, str, object]]:
    """(method, path, body) of requests that crashed the service before."""
    sid = catalog.space("retail-forecasting")
    weather = catalog.product("weather")
    return [
        ("GET", f"spaces/{HUGE}", None),
        ("GET", f"spaces/{HUGE}/access", None),
        ("GET", f"catalog/products/{HUGE}", None),
        ("GET", f"catalog/assets/{-HUGE}", None),
        ("GET", f"subscriptions/{HUGE}", None),
        ("GET", f"assets/{HUGE}/lineage", None),
        ("POST", f"spaces/{HUGE}/activate", None),
        ("GET", f"spaces/{HUGE}/status", None),
        ("GET", "spaces?offset=1.25e32", None),
        ("GET", f"spaces?offset={HUGE}", None),
        ("GET", f"catalog/products?offset={10**40}&limit=5", None),
        ("GET", f"users?offset={HUGE}", None),
        ("GET", f"subscriptions?offset={HUGE}", None),
        ("GET", "users?q=a%00b", None),
        ("POST", "spaces", {"display_name": "x", "products": [HUGE]}),
        ("POST", "spaces", {"display_name": "x", "workers": HUGE}),
        ("POST", "spaces", {"display_name": "x", "assets": [-HUGE]}),
        ("POST", "subscriptions", {"product_id": HUGE, "level": "full"}),
        ("POST", "subscriptions", {"asset_id": 1e300, "level": "full"}),
        ("POST", "spaces", DEEP),
        ("POST", "spaces", b'{"display_name": "a\\ud800b"}'),
        ("POST", "spaces", b'{"display_name": "ok", "\\udfff": 1}'),
        ("PATCH", f"spaces/{sid}", {"description": "a\u0000b"}),
        ("POST", f"spaces/{sid}/collaborators", {"user": "a\u0000b", "role": "viewer"}),
        ("POST", f"spaces/{sid}/publish", {"table": "forecast", "name": "a\u0000b"}),
        ("POST", f"spaces/{sid}/publish", {"table": "a\u0000b", "name": "ok"}),
        ("POST", "subscriptions", {"product_id": weather, "level": "full\u0000"}),
        ("DELETE", f"spaces/{sid}/collaborators/a%00b", None),
    ]


def send(client, method, path, body):
    if isinstance(body, bytes):
        return client.request(method, API + path, data=body, headers={"Content-Type": "application/json"})
    return client.request(method, API + path, json=body)


def test_hostile_input_gets_a_json_4xx_and_changes_nothing(hub, catalog, db_dump):
    alice = hub.token_session("alice")
    before = db_dump(ignore=("audit_events",))
    answers = {}
    for method, path, body in hostile_requests(catalog):
        r = send(alice, method, path, body)
        answers[f"{method} {path[:60]}"] = r.status_code
        assert 400 <= r.status_code < 500, (method, path[:80], r.status_code, r.text[:300])
        conforms(api_json(r), "Error")
    assert db_dump(ignore=("audit_events",)) == before, answers


@pytest.mark.parametrize("name", [
    "a\u0000b", "a\u0007b", "\ufeff", "\u200b\u200b", "   ", "\u00a0", "\u2060\ufeff", "tab\there",
])
def test_every_string_field_refuses_invisible_and_control_text(hub, catalog, db_dump, name):
    alice, admin = hub.token_session("alice"), hub.token_session("admin")
    sid = catalog.space("retail-forecasting")
    before = db_dump(ignore=("audit_events",))
    cases = [
        (alice, "POST", "spaces", {"display_name": name}, "display_name"),
        (alice, "PATCH", f"spaces/{sid}", {"display_name": name}, "display_name"),
        (alice, "PATCH", f"spaces/{sid}", {"profile": name}, "profile"),
        (alice, "POST", "spaces", {"display_name": "ok", "tools": [name]}, "tools"),
        (alice, "POST", f"spaces/{sid}/collaborators", {"user": name, "role": "viewer"}, "user"),
        (alice, "POST", f"spaces/{sid}/publish", {"table": "forecast", "name": name}, "name"),
        (admin, "POST", "subscriptions", {"product_id": catalog.product("weather"), "level": "full",
                                          "user": name}, "user"),
    ]
    for client, method, path, body, field in cases:
        got = assert_error(send(client, method, path, body), 422)
        assert field in got["fields"], (path, body, got)
    assert db_dump(ignore=("audit_events",)) == before


def test_a_description_may_have_lines_but_no_control_characters(hub, catalog):
    alice = hub.token_session("alice")
    sid = catalog.space("store-footprint")
    r = alice.patch(f"{API}spaces/{sid}", json={"description": "first line\nsecond\tline"})
    assert r.status_code == 200 and api_json(r)["description"] == "first line\nsecond\tline"
    assert alice.patch(f"{API}spaces/{sid}", json={"description": ""}).status_code == 200
    assert_error(alice.patch(f"{API}spaces/{sid}", json={"description": "nul\u0000"}), 422)
    assert_error(alice.patch(f"{API}spaces/{sid}", json={"description": "\u200b"}), 422)


def test_permission_is_checked_before_the_fields(hub, catalog, db_dump):
    carol, bob = hub.token_session("carol"), hub.token_session("bob")
    weather = catalog.product("weather")
    sid = catalog.space("retail-forecasting")
    before = db_dump(ignore=("audit_events",))
    # a non-admin naming an expiry is refused as a non-admin, whatever the expiry says
    for expiry in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "next tuesday", 5):
        assert_error(carol.post(API + "subscriptions", json={"product_id": weather, "level": "full",
                                                             "expires_at": expiry}), 403, "only spaces admins")
    with hub.token_session("admin") as admin:
        mine = api_json(admin.get(API + "subscriptions?user=carol"))["items"][0]["id"]
    assert_error(carol.patch(f"{API}subscriptions/{mine}", json={"expires_at": "0001-01-01T00:00:00+01:00"}), 403)
    # a viewer changing a space with a bad body learns that viewers may not edit
    assert_error(bob.delete(f"{API}spaces/{sid}/collaborators/carol"), 403)
    assert_error(hub.token_session("carol").patch(f"{API}spaces/{sid}", json={"workers": "lots", "x": 1}), 403)
    assert db_dump(ignore=("audit_events",)) == before


def test_an_admin_gets_a_422_for_an_expiry_out_of_range(hub, catalog):
    admin = hub.token_session("admin")
    weather = catalog.product("weather")
    for expiry in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        got = assert_error(admin.post(API + "subscriptions", json={"product_id": weather, "level": "full",
                                                                   "user": "carol", "expires_at": expiry}), 422)
        assert set(got["fields"]) == {"expires_at"}


def test_error_bodies_stay_small(hub, catalog):
    alice = hub.token_session("alice")
    body = {f"k{i}": i for i in range(50_000)}  # about 650 KB
    r = alice.post(API + "spaces", json=body)
    got = assert_error(r, 422)
    assert len(r.content) < 5_000, len(r.content)
    assert len(got["fields"]) <= 10 and "more" in got["message"]
    r = alice.post(API + "spaces", json={"display_name": "ok", "k" * 200_000: 1})
    assert len(r.content) < 2_000 and assert_error(r, 422)  # the key is quoted, cut short
    r = alice.post(API + "spaces", json={"display_name": "ok", "k" * 2_000_000: 1})
    assert_error(r, 413)  # larger than the service reads
    r = alice.get(f"{API}spaces/{'9' * 5000}")
    assert_error(r, 404) and len(r.content) < 1_000


# ---------------------------------------------------------------------------
# existence: a space you are not a member of answers exactly like no space at all

SPACE_ROUTES = [
    ("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/access"), ("GET", "/collaborators"),
    ("POST", "/collaborators"), ("PATCH", "/collaborators/alice"), ("DELETE", "/collaborators/alice"),
    ("POST", "/activate"), ("POST", "/suspend"), ("GET", "/status"), ("GET", "/progress"),
    ("GET", "/tools"), ("POST", "/publish"),
]


def body_for(method: str, route: str):
    if method not in ("POST", "PATCH"):
        return None
    return {"/collaborators": {"user": "dave", "role": "viewer"}, "/collaborators/alice": {"role": "viewer"},
            "/publish": {"table": "t", "name": "n"}, "": {"description": "x"}}.get(route)


@pytest.mark.parametrize("method, route", SPACE_ROUTES)
def test_a_stranger_gets_exactly_the_missing_answer_on_every_route(hub, catalog, db_dump, method, route):
    dave = hub.token_session("dave")
    hidden, missing = catalog.space("retail-forecasting"), 987654
    before = db_dump(ignore=("audit_events",))
    answers = []
    for sid in (hidden, missing):
        r = dave.request(method, f"{API}spaces/{sid}{route}", json=body_for(method, route))
        body = assert_error(r, 404)
        answers.append((r.status_code, body["message"].replace(str(sid), "N"), body.get("fields")))
    assert answers[0] == answers[1]
    assert db_dump(ignore=("audit_events",)) == before
