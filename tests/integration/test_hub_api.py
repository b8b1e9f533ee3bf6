"""The hub's own REST API, called directly as a hostile member would, with the hub
configured as shipped: the gate (``JupyterHub.named_server_limit_per_user =
space_server_gate``) and ``slow_spawn_timeout = 0``.

A refused start answers as a refusal (never 202), a named server exists only as a
space its user may start, and a server cannot be renamed onto a space.
"""

from __future__ import annotations

import pytest
from spaces_hub import API, api_json
from test_activation import race, server, servers, space_id, start_space_hub, suspend_all, wait_status

pytestmark = pytest.mark.slow

#: the lines of hub_config/jupyterhub_config.py this file tests (a unit test checks
#: both shipped configs set them)
SHIPPED = """
from jupyterhub_spaces.hub_gate import space_server_gate
c.JupyterHub.named_server_limit_per_user = space_server_gate
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
"""


@pytest.fixture(scope="module")
def gated_hub(tmp_path_factory):
    h = start_space_hub(tmp_path_factory.mktemp("gated"), SHIPPED)
    yield h
    for user in ("alice", "carol", "dave"):
        suspend_all(h, user)
    h.stop()
    h.store.dispose()


@pytest.fixture
def alice(gated_hub):
    suspend_all(gated_hub, "alice")
    yield gated_hub.token_session("alice")
    suspend_all(gated_hub, "alice")


def hub_error(r) -> str:
    body = api_json(r)
    return body.get("message", "")


def test_a_locked_start_is_refused_in_the_answer(gated_hub):
    carol = gated_hub.token_session("carol")
    name = server(gated_hub, "retail-forecasting")
    for method in ("POST", "PUT"):
        r = carol.request(method, f"/hub/api/users/carol/servers/{name}", json={})
        assert r.status_code == 403, (method, r.status_code, r.text)
        assert "weather" in hub_error(r)
    assert name not in servers(gated_hub, "carol")
    r = carol.post(f"{API}spaces/{space_id(gated_hub, 'retail-forecasting')}/activate")
    assert r.status_code == 403 and "weather" in api_json(r)["message"]


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_only_spaces_become_servers(gated_hub, alice, method):
    hidden = server(gated_hub, "weather-trends")  # dave's
    names = ("anything-at-all", "space-987654", hidden)
    answers = [alice.request(method, f"/hub/api/users/alice/servers/{name}", json={"display_name": "Anything"})
               for name in names]
    for r, name in zip(answers, names):
        assert r.status_code == 404, (name, r.status_code, r.text)
    # a space alice may not see answers exactly like no space at all
    assert len({hub_error(r).replace(name, "X") for r, name in zip(answers, names)}) == 1
    assert not set(names) & set(servers(gated_hub, "alice"))


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_a_slug_is_not_a_server_name(gated_hub, alice, method):
    """Slugs are unique per owner only, so a slug names no server: alice's own space
    by its slug is refused like a name that is no space, and leaves no record."""
    r = alice.request(method, "/hub/api/users/alice/servers/store-footprint", json={})
    assert r.status_code == 404, (r.status_code, r.text)
    assert hub_error(r).startswith("alice has no space 'store-footprint'"), r.text
    assert "store-footprint" not in servers(gated_hub, "alice")


def test_a_server_cannot_be_renamed_onto_a_space(gated_hub, alice):
    name = server(gated_hub, "store-footprint")
    onto = [server(gated_hub, "race-00"), server(gated_hub, "race-01")]
    r = alice.put(f"/hub/api/users/alice/servers/{name}", json={})
    assert r.status_code == 201, r.text  # a stopped record of a space she may start
    try:
        r = alice.patch(f"/hub/api/users/alice/servers/{name}", json={"name": onto[0]})
        assert r.status_code == 409 and "cannot be renamed" in hub_error(r), r.text
        r = alice.patch("/hub/api/users/alice/servers/", json={"name": onto[1]})
        assert r.status_code == 409, r.text
        names = set(servers(gated_hub, "alice"))
        assert name in names and not set(onto) & names
    finally:
        gated_hub.hub_api("DELETE", f"/users/alice/servers/{name}", json={"remove": True})


def test_a_second_space_is_refused_in_the_answer(gated_hub, alice):
    first = space_id(gated_hub, "store-footprint")
    others = [server(gated_hub, "race-05"), server(gated_hub, "race-06")]
    r = alice.post(f"/hub/api/users/alice/servers/space-{first}", json={})
    assert r.status_code in (201, 202), r.text
    # while it starts, and once it runs, a second space is a 409 naming the first
    r = alice.post(f"/hub/api/users/alice/servers/{others[0]}", json={})
    assert r.status_code == 409 and f"space-{first}" in hub_error(r), r.text
    wait_status(alice, first, "active")
    r = alice.post(f"/hub/api/users/alice/servers/{others[1]}", json={})
    assert r.status_code == 409 and f"space-{first}" in hub_error(r), r.text
    assert not set(others) & set(servers(gated_hub, "alice"))


def test_concurrent_starts_answer_one_start_and_refusals(gated_hub, alice):
    # half through the spaces API, half straight to the hub: one start, every other
    # answer a 409 naming the winner, no record of the refused
    race(gated_hub, alice)


def test_progress_of_a_space_never_started_is_one_final_event(gated_hub, alice):
    from jsonschema import Draft202012Validator

    from jupyterhub_spaces.service.openapi import document

    sid = space_id(gated_hub, "never-started")  # alice's: the hub has no record of it
    r = alice.get(f"{API}spaces/{sid}/progress", timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream"), r.text
    events = [line[len("data:"):] for line in r.text.splitlines() if line.startswith("data:")]
    assert len(events) == 1, r.text  # never the hub's JSON error inside the stream
    event = __import__("json").loads(events[0])
    schema = {"$ref": "#/components/schemas/ProgressEvent", "components": document()["components"]}
    Draft202012Validator(schema).validate(event)
    assert event["failed"] is True and "inactive" in event["message"]
