"""The service's Prometheus metrics through the real hub: who may read them, and that
they count what happened (API latency by route, refusals, sessions by mode and
profile read from the catalog)."""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from spaces_hub import API, PREFIX, api_json
from sqlalchemy import delete, select

from jupyterhub_spaces import orm

pytestmark = pytest.mark.slow

METRICS = PREFIX + "metrics"


def scrape(hub) -> dict[tuple, float]:
    r = hub.token_session("admin").get(METRICS)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_only_admins_and_metrics_tokens_read_the_metrics(hub):
    r = hub.token_session("alice").get(METRICS)
    assert r.status_code == 403 and "read:metrics" in api_json(r)["message"], r.text
    assert requests.get(hub.url + METRICS, timeout=10).status_code == 401
    assert hub.token_session("admin").get(METRICS).status_code == 200


def test_requests_and_refusals_are_counted_by_route_and_action(hub, catalog):
    before = scrape(hub)
    carol = hub.token_session("carol")
    assert carol.get(API).status_code == 200
    weather = catalog.product("weather")
    refused = carol.post(API + "subscriptions", json={"product_id": weather, "level": "full", "user": "carol"})
    assert refused.status_code == 403, refused.text
    after = scrape(hub)
    count = "spaces_api_request_duration_seconds_count"
    assert value(after, count, method="GET", route="RootHandler", status="200") == \
        value(before, count, method="GET", route="RootHandler", status="200") + 1
    assert value(after, "spaces_refusals_total", action="subscription.grant", status="403") == \
        value(before, "spaces_refusals_total", action="subscription.grant", status="403") + 1
    # the labels name routes, never the paths callers send
    carol.get(API + "spaces/does-not-exist-" + "x" * 40)
    assert not any("does-not-exist" in str(key) for key in scrape(hub))


def test_sessions_are_counted_by_state_mode_and_profile_from_the_catalog(hub, catalog, store):
    with store.transaction() as db:
        space = db.scalars(select(orm.Space).order_by(orm.Space.id)).first()
        user = db.scalar(select(orm.User).where(orm.User.name == "alice"))
        profile = space.profile
        db.execute(delete(orm.Activation))
        db.add(orm.Activation(space_id=space.id, user_id=user.id, state="active", mode="sandbox", reason=""))
    try:
        samples = scrape(hub)
        assert value(samples, "spaces_sessions", state="active", mode="sandbox", profile=profile) == 1
        assert not any(k[0] == "spaces_sessions" and v and dict(k[1])["mode"] == "workbench"
                       for k, v in samples.items())
    finally:
        with store.transaction() as db:
            db.execute(delete(orm.Activation))
