"""The spaces service's Prometheus metrics, served at ``GET /services/spaces/metrics``.

Counted in the service process (each replica counts its own; Prometheus adds them):

- ``spaces_api_request_duration_seconds{method,route,status}``: latency by route (the
  route's handler, never the path a caller sent, so the labels stay few);
- ``spaces_refusals_total{action,status}``: requests the rules refused (every refusal
  the audit log records).

Read from the catalog at each scrape (the same answer from every replica):

- ``spaces_sessions{state,mode,profile}``: sessions by state (starting, active, ...),
  mode (workbench, sandbox) and machine profile;
- ``spaces_task_runs_total{state}``: task runs by state.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select

from .. import orm

#: the content type of the exposition format
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """One service's metrics, in a registry of their own (nothing of other libraries)."""

    def __init__(self, store):
        self.registry = CollectorRegistry(auto_describe=True)
        self.api_latency = Histogram(
            "spaces_api_request_duration_seconds",
            "Time the spaces service took to answer, by route",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "spaces_refusals",
            "Requests refused by the rules, by audited action and HTTP status",
            ["action", "status"],
            registry=self.registry,
        )
        self.registry.register(_CatalogCollector(store))

    def observe_request(self, handler) -> None:
        route = type(handler).__name__
        self.api_latency.labels(
            handler.request.method, route, str(handler.get_status())
        ).observe(handler.request.request_time())

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _CatalogCollector:
    """Sessions and task runs, counted in the catalog when Prometheus asks."""

    def __init__(self, store):
        self.store = store

    def describe(self):
        return []

    def collect(self):
        sessions = GaugeMetricFamily(
            "spaces_sessions", "Sessions by state, mode and machine profile",
            labels=["state", "mode", "profile"],
        )
        runs = CounterMetricFamily("spaces_task_runs", "Task runs by state", labels=["state"])
        with self.store.transaction() as db:
            for state, mode, profile, n in db.execute(
                select(orm.Activation.state, orm.Activation.mode, orm.Space.profile, func.count())
                .join(orm.Space, orm.Space.id == orm.Activation.space_id)
                .group_by(orm.Activation.state, orm.Activation.mode, orm.Space.profile)
            ):
                sessions.add_metric([state, mode or "", profile], n)
            for state, n in db.execute(
                select(orm.TaskRun.state, func.count()).group_by(orm.TaskRun.state)
            ):
                runs.add_metric([state], n)
        yield sessions
        yield runs
