"""The hub's own REST API, called directly as a hostile member would, with the hub
configured as shipped: the gate (``JupyterHub.named_server_limit_per_user =
space_server_gate``) and ``slow_spawn_timeout = 0``.

A refused start answers as a refusal (never 202), a named server exists only as a
space its user may start, and a server cannot be renamed onto a space.
"""

from __future__ import annotations

import pytest
from spaces_hub import API, api_json
from test_activation import race, servers, space_id, start_space_hub, suspend_all, wait_status

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
    for method in ("POST", "PUT"):
        r = carol.request(method, "/hub/api/users/carol/servers/retail-forecasting", json={})
        assert r.status_code == 403, (method, r.status_code, r.text)
        assert "weather" in hub_error(r)
    assert "retail-forecasting" not in servers(gated_hub, "carol")
    r = carol.post(f"{API}spaces/{space_id(gated_hub, 'retail-forecasting')}/activate")
    assert r.status_code == 403 and "weather" in api_json(r)["message"]


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_only_spaces_become_servers(gated_hub, alice, method):
    r_missing = alice.request(method, "/hub/api/users/alice/servers/anything-at-all",
                              json={"display_name": "Anything"})
    r_hidden = alice.request(method, "/hub/api/users/alice/servers/weather-trends", json={})  # dave's
    for r, name in ((r_missing, "anything-at-all"), (r_hidden, "weather-trends")):
        assert r.status_code == 404, (name, r.status_code, r.text)
    # a space alice may not see answers exactly like no space at all
    assert hub_error(r_missing).replace("anything-at-all", "X") == hub_error(r_hidden).replace("weather-trends", "X")
    assert not {"anything-at-all", "weather-trends"} & set(servers(gated_hub, "alice"))


def test_a_server_cannot_be_renamed_onto_a_space(gated_hub, alice):
    r = alice.put("/hub/api/users/alice/servers/store-footprint", json={})
    assert r.status_code == 201, r.text  # a stopped record of a space she may start
    try:
        r = alice.patch("/hub/api/users/alice/servers/store-footprint", json={"name": "race-00"})
        assert r.status_code == 409 and "cannot be renamed" in hub_error(r), r.text
        r = alice.patch("/hub/api/users/alice/servers/", json={"name": "race-01"})
        assert r.status_code == 409, r.text
        names = set(servers(gated_hub, "alice"))
        assert "store-footprint" in names and not {"race-00", "race-01"} & names
    finally:
        gated_hub.hub_api("DELETE", "/users/alice/servers/store-footprint", json={"remove": True})


def test_a_second_space_is_refused_in_the_answer(gated_hub, alice):
    first = space_id(gated_hub, "store-footprint")
    r = alice.post("/hub/api/users/alice/servers/store-footprint", json={})
    assert r.status_code in (201, 202), r.text
    # while it starts, and once it runs, a second space is a 409 naming the first
    r = alice.post("/hub/api/users/alice/servers/race-05", json={})
    assert r.status_code == 409 and "store-footprint" in hub_error(r), r.text
    wait_status(alice, first, "active")
    r = alice.post("/hub/api/users/alice/servers/race-06", json={})
    assert r.status_code == 409 and "store-footprint" in hub_error(r), r.text
    assert not {"race-05", "race-06"} & set(servers(gated_hub, "alice"))


def test_concurrent_starts_answer_one_start_and_refusals(gated_hub, alice):
    # half through the spaces API, half straight to the hub: one start, every other
    # answer a 409 naming the winner, no record of the refused
    race(gated_hub, alice)


def test_progress_of_a_space_never_started_is_one_final_event(gated_hub, alice):
    from jsonschema import Draft202012Validator

    from jupyterhub_spaces.service.openapi import document

    sid = space_id(gated_hub, "race-10")  # alice's, never started: the hub has no record
    r = alice.get(f"{API}spaces/{sid}/progress", timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream"), r.text
    events = [line[len("data:"):] for line in r.text.splitlines() if line.startswith("data:")]
    assert len(events) == 1, r.text  # never the hub's JSON error inside the stream
    event = __import__("json").loads(events[0])
    schema = {"$ref": "#/components/schemas/ProgressEvent", "components": document()["components"]}
    Draft202012Validator(schema).validate(event)
    assert event["failed"] is True and "inactive" in event["message"]
