"""The Spaces web app's pages as served through the real proxy: who gets them, the
security headers they carry, and the XSRF token they hand to the app's script.

Pages do not depend on the catalog database, so this module runs on SQLite only.
"""

from __future__ import annotations

import json
import re

import pytest

from spaces_hub import PREFIX

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def db_kind():
    return "sqlite"


def page_config(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="spaces-config">(.*?)</script>', html, re.S)
    assert m, html[:500]
    return json.loads(m.group(1))


def test_anonymous_visitors_are_sent_to_the_hub_login(hub):
    import requests

    r = requests.get(hub.url + PREFIX, allow_redirects=False, timeout=30)
    assert r.status_code == 302
    assert "/hub/api/oauth2/authorize" in r.headers["Location"]


@pytest.mark.parametrize("user, admin", [("alice", False), ("admin", True)])
def test_the_app_page_carries_csp_and_the_users_xsrf_token(hub, user, admin):
    s = hub.browser(user)
    r = s.get(PREFIX, headers={"Sec-Fetch-Mode": "navigate"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    config = page_config(r.text)
    assert (config["user"], config["admin"]) == (user, admin)
    assert config["api"] == PREFIX + "api/v1/"
    # the token the page gives its script is the one the service checks writes against
    assert config["xsrf"] and config["xsrf"] == s.xsrf_cookie()
    # no inline script: every script is a file of the service
    scripts = re.findall(r"<script(?![^>]*application/json)[^>]*>", r.text)
    assert scripts and all("src=" in tag for tag in scripts)


def test_writes_need_the_pages_token(hub):
    s = hub.browser("alice", fresh=True)
    token = page_config(s.get(PREFIX, headers={"Sec-Fetch-Mode": "navigate"}).text)["xsrf"]
    fetch = {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}
    body = json.dumps({"display_name": "From the page"})
    refused = s.post(PREFIX + "api/v1/spaces", data=body, headers=fetch, xsrf=False)
    assert refused.status_code == 401, refused.text
    forged = s.post(PREFIX + "api/v1/spaces", data=body, headers={**fetch, "X-XSRFToken": token[:-4] + "AAAA"}, xsrf=False)
    assert forged.status_code == 401, forged.text
    made = s.post(PREFIX + "api/v1/spaces", data=body, headers={**fetch, "X-XSRFToken": token}, xsrf=False)
    assert made.status_code == 201, made.text
    s.delete(PREFIX + f"api/v1/spaces/{made.json()['id']}", headers={"X-XSRFToken": token}, xsrf=False)


def test_connect_page_hands_the_token_to_its_own_origin_only(hub):
    s = hub.browser("alice")
    r = s.get(PREFIX + "connect", headers={"Sec-Fetch-Mode": "navigate"})
    assert r.status_code == 200
    assert "frame-ancestors 'self'" in r.headers["Content-Security-Policy"]
    assert page_config(r.text)["xsrf"] == s.xsrf_cookie()
    script = s.get(PREFIX + "static/connect.js")
    assert "window.location.origin" in script.text  # postMessage's target origin


def test_static_files_are_served_with_headers_and_never_outside_their_folder(hub):
    s = hub.browser("alice")
    r = s.get(PREFIX + "static/app.js?v=1")
    assert r.status_code == 200
    assert "javascript" in r.headers["Content-Type"]
    assert "Content-Security-Policy" in r.headers
    assert "immutable" in r.headers.get("Cache-Control", "")
    for path in ("static/../handlers/pages.py", "static/%2e%2e/base.py", "static/nope.js"):
        r = s.get(PREFIX + path)
        assert r.status_code in (403, 404), path
        assert "import" not in r.text
