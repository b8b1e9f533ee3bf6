"""The service behind the real hub: who it lets in, how it answers errors, and the
admin scope reaching it through both a token and the browser's OAuth flow."""

from __future__ import annotations

import pytest
import requests
from spaces_hub import API, PREFIX, api_json

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("via", ["browser", "token"])
@pytest.mark.parametrize("user,admin", [("alice", False), ("admin", True)])
def test_identity_and_admin_scope(hub, via, user, admin):
    client = hub.clients(user)[via]
    r = client.get(API)
    assert r.status_code == 200, r.text
    body = api_json(r)
    assert body["user"] == user
    assert body["admin"] is admin


def test_anonymous_and_bad_token_get_json_401(hub):
    for headers in ({}, {"Authorization": "token not-a-real-token"}):
        r = requests.get(hub.url + API + "me", headers=headers, timeout=10)
        assert r.status_code == 401
        body = api_json(r)
        assert body["status"] == 401 and body["error"] == "Unauthorized"
        assert "Authorization: token" in body["message"]


def test_token_without_service_access_is_refused(hub):
    # a token limited to reading its own user model lacks access:services!service=spaces
    client = hub.token_session("alice", scopes=["read:users!user=alice"])
    r = client.get(API)
    assert r.status_code == 403
    assert "access:services!service=spaces" in api_json(r)["message"]


def test_cookie_write_without_xsrf_is_not_authenticated(hub):
    browser = hub.browser("alice")
    r = browser.post(API, json={}, xsrf=False)
    assert r.status_code == 401
    assert "X-XSRFToken" in api_json(r)["message"]


def test_unknown_route_and_method_are_json(hub):
    client = hub.token_session("alice")
    r = client.get(PREFIX + "api/v1/no-such-thing")
    assert r.status_code == 404
    assert api_json(r)["error"] == "Not Found"
    r = client.delete(API + "me")
    assert r.status_code == 405
    assert api_json(r)["message"] == f"DELETE is not allowed on {API}me"


def test_login_redirect_stays_inside_the_service(hub):
    browser = hub.browser("alice")
    r = browser.get(PREFIX + "login?next=//evil.example/", allow_redirects=False)
    assert r.status_code == 302
    assert r.headers["Location"] == PREFIX


def test_me_shows_the_demo_organization(hub, catalog):
    r = hub.token_session("dave").get(API + "me")
    assert api_json(r)["org"] == "contoso"
