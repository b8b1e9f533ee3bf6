"""The one store's API: one Store per catalog and process, the space a session gets,
the decision with only the subscriptions that matter, and the activation record with
its one set of states. Real SQLite catalogs seeded with the demo."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from jupyterhub_spaces import demo, orm, policy
from jupyterhub_spaces.settings import SpacesSettings
from jupyterhub_spaces.store import (
    RUNNING,
    ActivationState,
    activation,
    decide,
    decide_spec,
    load_space,
    record_activation,
    required_keys,
    running_activations,
    session_assets,
    shared,
    space_spec,
    subscriptions_to,
    suspend_activation,
)
from jupyterhub_spaces.utils import utcnow


@pytest.fixture
def store(tmp_path):
    url = f"sqlite:///{tmp_path}/catalog.sqlite"
    s = shared(url)
    demo.seed(s, SpacesSettings(db_url=url, data_root=str(tmp_path / "data"),
                                source_db_url=f"sqlite:///{tmp_path}/sources.sqlite"))
    yield s
    s.dispose()


def space_id(store, slug):
    with store.transaction() as db:
        return db.scalar(select(orm.Space.id).where(orm.Space.slug == slug))


def test_one_store_per_catalog_and_process(tmp_path, store):
    assert shared(store.url) is store
    other = shared(f"sqlite:///{tmp_path}/other.sqlite")
    assert other is not store and other.engine is not store.engine
    other.dispose()


def test_load_space_and_the_assets_a_session_gets(store):
    with store.transaction() as db:
        assert load_space(db, None) is None
        assert load_space(db, 10**6) is None
        space = load_space(db, space_id(store, "retail-forecasting"), with_product_assets=True)
        assets = session_assets(space)
    # every asset of both products, each once
    names = [a.name for a in assets]
    assert len(names) == len(set(names))
    assert {"stores", "daily-weather"} <= set(names)
    with store.transaction() as db:
        footprint = load_space(db, space_id(store, "store-footprint"), with_product_assets=True)
        assert [a.name for a in session_assets(footprint)] == ["stores"]


def test_decide_reads_only_the_subscriptions_that_matter(store):
    sid = space_id(store, "weather-trends")
    with store.transaction() as db:
        spec = space_spec(db, load_space(db, sid))
        keys = required_keys([spec], lineage_enforced=True)
        assert {kind for kind, _ in keys} == {"product"}
        # alice holds retail-sales and weather; only weather matters here
        subs = subscriptions_to(db, ["alice", "dave"], keys)
        assert {(s.user, s.target.name) for s in subs} == {("alice", "weather"), ("dave", "weather")}
        assert subscriptions_to(db, [], keys) == [] and subscriptions_to(db, ["alice"], set()) == []
        decisions = decide_spec(db, ["dave", "alice"], spec)
        assert decisions["dave"].mode == policy.Mode.workbench
        assert decisions["alice"].mode == policy.Mode.not_member
        assert decide(db, ["dave"], load_space(db, sid))["dave"] == decisions["dave"]


def test_a_revoked_subscription_counts_the_very_next_decision(store):
    sid = space_id(store, "weather-trends")
    with store.transaction() as db:
        dave = db.scalar(select(orm.User.id).where(orm.User.name == "dave"))
        sub = db.scalar(select(orm.Subscription).where(orm.Subscription.user_id == dave))
        sub.expires_at = utcnow() - timedelta(seconds=1)
    with store.transaction() as db:
        decision = decide(db, ["dave"], load_space(db, sid))["dave"]
    assert decision.mode == policy.Mode.locked and "expired" in decision.reason


def test_the_activation_record(store):
    sid = space_id(store, "retail-forecasting")
    assert set(RUNNING) == {ActivationState.starting, ActivationState.active}
    with store.transaction() as db:
        assert activation(db, sid, "alice") is None
        record_activation(db, sid, "alice", ActivationState.starting, mode="workbench")
        record_activation(db, sid, "nobody", ActivationState.starting)  # unknown user: nothing
    with store.transaction() as db:
        row = activation(db, sid, "alice")
        assert (row["state"], row["mode"], row["reason"]) == ("starting", "workbench", "")
        assert running_activations(db) == {sid: [("alice", "workbench")]}
        assert running_activations(db, space_id=sid + 1000) == {}
        record_activation(db, sid, "alice", ActivationState.active)
    with store.transaction() as db:
        suspend_activation(db, sid, "alice", "no longer a member of the space")
    with store.transaction() as db:
        row = activation(db, sid, "alice")
        assert (row["state"], row["mode"], row["reason"]) == ("suspended", "workbench", "no longer a member of the space")
        assert running_activations(db) == {}
        # a suspension the spawner records afterwards keeps the reason
        record_activation(db, sid, "alice", ActivationState.suspended, keep_reason=True)
    with store.transaction() as db:
        assert activation(db, sid, "alice")["reason"] == "no longer a member of the space"
        # only a running (or, asked so, suspended) session is marked
        record_activation(db, sid, "alice", ActivationState.failed, reason="boom")
        suspend_activation(db, sid, "alice", "other", recorded=True)
        assert activation(db, sid, "alice")["state"] == "failed"
    with pytest.raises(ValueError):
        with store.transaction() as db:
            record_activation(db, sid, "alice", "running")  # not a state
