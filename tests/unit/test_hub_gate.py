"""The hub's named-server gate (jupyterhub_spaces.hub_gate), table-driven on a real
catalog with stand-ins for the hub's handler and user objects, and the shipped hub
configs that install it."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from tornado import web
from traitlets.config import Config

from jupyterhub_spaces import demo, orm, policy
from jupyterhub_spaces.hub_gate import space_server_gate
from jupyterhub_spaces.settings import SpacesSettings
from jupyterhub_spaces.store import shared as get_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gate")
    c = Config()
    c.SpacesSettings.db_url = f"sqlite:///{tmp / 'spaces.sqlite'}"
    c.SpacesSettings.data_root = str(tmp / "data")
    c.SpacesSettings.source_db_url = f"sqlite:///{tmp / 'sources.sqlite'}"
    demo.seed(get_store(c.SpacesSettings.db_url), SpacesSettings(config=c))
    return c


@pytest.fixture(scope="module")
def server(config):
    """The server name of a demo space, by its slug; any other name unchanged."""
    with get_store(config.SpacesSettings.db_url).transaction() as db:
        names = {slug: policy.server_name(i) for slug, i in db.execute(select(orm.Space.slug, orm.Space.id))}
    return lambda name: names.get(name, name)


class Spawner(SimpleNamespace):
    ready = False
    pending = None

    @property
    def active(self):
        return bool(self.ready or self.pending)


def handler(config, user: str, server: str, method: str = "POST", running: dict | None = None):
    hub_user = SimpleNamespace(name=user, spawners={n: Spawner(name=n, **s) for n, s in (running or {}).items()})
    return SimpleNamespace(
        settings={"config": config, "base_url": "/"},
        path_args=(user, server),
        request=SimpleNamespace(method=method),
        find_user=lambda name: hub_user if name == user else None,
    )


@pytest.mark.parametrize(
    "user, name, running, status, phrase",
    [
        ("alice", "store-footprint", {}, None, ""),
        ("alice", "retail-forecasting", {}, None, ""),
        ("carol", "retail-forecasting", {}, 403, "weather"),  # locked
        ("dave", "retail-forecasting", {}, 404, "has no space 'retail-forecasting'"),  # not a member
        ("dave", "no-such-space", {}, 404, "has no space 'no-such-space'"),
        ("alice", "store-footprint", {"retail-forecasting": {"ready": True}}, 409, "'retail-forecasting' is already active"),
        ("alice", "store-footprint", {"retail-forecasting": {"pending": "spawn"}}, 409, "retail-forecasting"),
        ("alice", "store-footprint", {"retail-forecasting": {"pending": "stop", "_stop_pending": True}}, 409, "retail-forecasting"),
        # the server itself already starting or running: the hub answers that itself
        ("alice", "store-footprint", {"store-footprint": {"pending": "spawn"}}, None, ""),
    ],
)
def test_gate_decisions(config, server, user, name, running, status, phrase):
    """Spaces are named by their slugs here, and the gate gets their server names."""
    name = server(name)
    running = {server(n): s for n, s in running.items()}
    phrase = re.sub(r"[a-z]+-[a-z]+(?:-[a-z]+)?", lambda m: server(m.group()), phrase)
    if status is None:
        assert space_server_gate(handler(config, user, name, running=running)) == 0
        return
    with pytest.raises(web.HTTPError) as e:
        space_server_gate(handler(config, user, name, running=running))
    assert e.value.status_code == status
    assert phrase in e.value.log_message % e.value.args


@pytest.mark.parametrize("slug", ["store-footprint", "retail-forecasting"])
def test_a_slug_is_not_a_server_name(config, server, slug):
    """Alice owns both spaces: by their server names the gate lets her start them
    (above), by their slugs it refuses them like a name that is no space."""
    assert server(slug) != slug
    with pytest.raises(web.HTTPError) as e:
        space_server_gate(handler(config, "alice", slug))
    assert (e.value.status_code, e.value.log_message % e.value.args) == (
        404, f"alice has no space {slug!r}: a session is a space you are a member of; create or "
        "pick one in the Spaces app at /services/spaces/")


def test_a_stranger_and_a_missing_space_read_alike(config, server):
    messages = []
    for name in (server("retail-forecasting"), "space-987654", "no-such-space-x"):
        with pytest.raises(web.HTTPError) as e:
            space_server_gate(handler(config, "dave", name))
        messages.append((e.value.status_code, (e.value.log_message % e.value.args).replace(name, "X")))
    assert messages[0] == messages[1] == messages[2]


@pytest.mark.parametrize("method, server", [("GET", ""), ("PATCH", "anything"), ("POST", ""), ("POST", "Not A Slug")])
def test_gate_leaves_other_requests_to_the_hub(config, method, server):
    assert space_server_gate(handler(config, "dave", server, method=method)) == 0


def test_refusals_are_audited(config, server):
    store = get_store(config.SpacesSettings.db_url)
    with pytest.raises(web.HTTPError):
        space_server_gate(handler(config, "carol", server("retail-forecasting")))
    with store.transaction() as db:
        event = db.scalars(select(orm.AuditEvent).order_by(orm.AuditEvent.id.desc()).limit(1)).one()
    assert (event.actor, event.action, event.outcome, event.detail["via"]) == ("carol", "space.activate", "refused", "hub")


@pytest.mark.parametrize("name", ["jupyterhub_config.py", "jupyterhub_config_k8s.py"])
def test_shipped_hub_configs_install_the_gate(name):
    text = (ROOT / "hub_config" / name).read_text()
    assert re.search(r"^c\.JupyterHub\.named_server_limit_per_user = space_server_gate$", text, re.M)
    assert re.search(r"^from jupyterhub_spaces\.hub_gate import space_server_gate$", text, re.M)
