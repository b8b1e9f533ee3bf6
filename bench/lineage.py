"""How fast are lineage-aware access checks and the lineage API on a big lineage graph?

Builds a catalog with 10,000 assets and lineage 20 levels deep: 100 products with 5
primary table assets each (500 assets, level 0), then 19 levels of 500 derived assets,
each made from two neighbouring assets of the level above (and every tenth from the
whole product of its first source too). A space holds one derived asset at the bottom
(level 19); its owner is subscribed to every product.

Then, in one run and on one catalog, times ``--repeat`` times each:

(baseline) a plain primary-key lookup of an asset, in its own transaction;
(a) the access check for the space as ``GET /api/v1/spaces/{id}/access`` runs it:
    load it as plain rows, read what its derived asset was made from (the lineage
    closure written at publish, one plain query), read the subscriptions that can
    matter, decide with lineage enforced;
    printed next to the same check for a space holding one primary asset, to show
    what the lineage adds, and to the spawner's way (the space as ORM objects,
    ``store.decide``), which runs once per activation;
(b) the lineage API call's work for the bottom asset: its closure both ways, the
    graph's edges, node details, and the JSON body (``GET /api/v1/assets/{id}/lineage``
    without HTTP).

Prints p50 / p99 of each and their ratio to the baseline. Target: (a) p99 < 5 ms.

    python bench/lineage.py [--repeat 200] [--db-url URL] [--postgres]

``--postgres`` creates (and drops afterwards) a database on the server named by
``$SPACES_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``);
the default is a SQLite file in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid

from sqlalchemy import create_engine, insert

from jupyterhub_spaces import orm
from jupyterhub_spaces.databases.lineage import lineage
from jupyterhub_spaces.service.queries import space_views
from jupyterhub_spaces.store import decide_all, required_keys, subscriptions_to
from jupyterhub_spaces.store import Store, decide, record_lineage, space_query, space_spec
from jupyterhub_spaces.utils import utcnow

PRODUCTS = 100
PER_PRODUCT = 5
WIDTH = PRODUCTS * PER_PRODUCT  # assets per level
LEVELS = 20
#: the access check for the derived asset at depth 20, on PostgreSQL
TARGET_P99_MS = 5


def build(store: Store) -> tuple[int, int, int, int]:
    """Fill the catalog; returns (id of the space with the bottom asset, id of a space
    with one primary asset, bottom asset id, a primary asset id)."""
    with store.transaction() as db:
        org = orm.Organization(name="bench")
        db.add(org)
        db.flush()
        user = orm.User(name="ann", org_id=org.id)
        db.add(user)
        db.flush()
        conn = db.connection()
        conn.execute(insert(orm.Product), [
            {"id": p + 1, "name": f"product-{p}", "description": "", "owner_org_id": org.id}
            for p in range(PRODUCTS)
        ])
        rows, edges = [], []
        next_id = 1
        ids = [[0] * WIDTH for _ in range(LEVELS)]
        for level in range(LEVELS):
            for i in range(WIDTH):
                ids[level][i] = next_id
                primary = level == 0
                rows.append({
                    "id": next_id, "name": f"a-{level}-{i}", "description": "", "kind": "table",
                    "location": f"t_{level}_{i}", "product_id": i // PER_PRODUCT + 1 if primary else None,
                    "owner_org_id": org.id, "derived": not primary, "created_by": "bench",
                })
                if not primary:
                    left, right = ids[level - 1][i], ids[level - 1][(i + 1) % WIDTH]
                    edges.append({"asset_id": next_id, "source_asset_id": left, "source_product_id": None})
                    edges.append({"asset_id": next_id, "source_asset_id": right, "source_product_id": None})
                    if i % 10 == 0:
                        edges.append({"asset_id": next_id, "source_asset_id": None,
                                      "source_product_id": (i // PER_PRODUCT) % PRODUCTS + 1})
                next_id += 1
        conn.execute(insert(orm.Asset), rows)
        # as publishes write it, level by level: edges and closure together
        sources: dict[int, tuple[list, list]] = {}
        for e in edges:
            products, assets = sources.setdefault(e["asset_id"], ([], []))
            (products.append(e["source_product_id"]) if e["source_product_id"] else assets.append(e["source_asset_id"]))
        for asset_id, (products, assets) in sources.items():
            record_lineage(db, asset_id, products, assets)
        conn.execute(insert(orm.Subscription), [
            {"user_id": user.id, "product_id": p + 1, "asset_id": None, "level": "full",
             "status": "active", "granted_by": "bench"}
            for p in range(PRODUCTS)
        ])
        bottom = ids[LEVELS - 1][WIDTH // 2]
        spaces = []
        for slug, asset in (("bench", bottom), ("plain", ids[0][WIDTH // 2])):
            space = orm.Space(slug=slug, display_name=slug, owner_id=user.id,
                              tools=["jupyterlab"], profile="small")
            space.assets = [orm.SpaceAsset(asset_id=asset)]
            space.collaborators = [orm.Collaborator(user_id=user.id, role="owner")]
            db.add(space)
            db.flush()
            spaces.append(space.id)
        return spaces[0], spaces[1], bottom, ids[0][WIDTH // 2]


def timed(fn, repeat: int) -> tuple[list[float], float]:
    """Wall-clock times (ms) of ``repeat`` calls, and the mean CPU time of this process
    per call (ms): on a shared machine the wall clock also counts waiting for a CPU."""
    fn()  # warm caches and the pool, as a running service would have them
    out = []
    cpu0 = time.process_time()
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out, (time.process_time() - cpu0) * 1000 / repeat


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if q < 100 else max(values)


def run(url: str, repeat: int) -> bool:
    store = Store(url)
    t0 = time.perf_counter()
    space_id, plain_id, bottom, primary = build(store)
    with store.engine.connect() as conn:
        # fresh statistics, as the server's autovacuum keeps them for a live catalog
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    print(f"catalog: {url.split('@')[-1]}")
    print(f"  built {LEVELS * WIDTH} assets, depth {LEVELS}, in {time.perf_counter() - t0:.1f} s")

    def pk_lookup():
        with store.transaction() as db:
            db.get(orm.Asset, primary)

    def check(sid):
        # what GET /api/v1/spaces/{id}/access runs: the space as plain rows, its
        # lineage, the subscriptions that can matter, the decision
        def access_check():
            with store.transaction() as db:
                spec = space_spec(db, space_views(db, [sid])[sid])
                subs = subscriptions_to(db, ["ann"], required_keys([spec], True))
                decision = decide_all(spec, subs, ["ann"], utcnow(), True)["ann"]
                assert decision.mode.value == "workbench", decision.reason

        return access_check

    def spawner_check():
        # what the spawner runs once per activation: the space as ORM objects
        with store.transaction() as db:
            space = db.scalar(space_query().where(orm.Space.id == space_id))
            decision = decide(db, ["ann"], space, lineage_enforced=True)["ann"]
            assert decision.mode.value == "workbench", decision.reason

    def lineage_call():
        with store.transaction() as db:
            json.dumps(lineage(db, bottom), default=str)

    with store.transaction() as db:
        graph = lineage(db, bottom)
        print(f"  bottom asset: {graph['upstream']} upstream nodes, {len(graph['edges'])} edges")

    base, base_cpu = timed(pk_lookup, repeat)
    plain, plain_cpu = timed(check(plain_id), repeat)
    access, access_cpu = timed(check(space_id), repeat)
    spawner, spawner_cpu = timed(spawner_check, repeat)
    api, api_cpu = timed(lineage_call, repeat)
    b50, b99 = p(base, 50), p(base, 99)
    print(f"  load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"  {'':34} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms':>8} {'p50 ratio':>10} {'p99 ratio':>10}")
    for label, values, cpu in (
        ("primary-key lookup (baseline)", base, base_cpu),
        ("access check, one primary asset", plain, plain_cpu),
        ("access check, derived at depth 20", access, access_cpu),
        ("  same, as the spawner loads it", spawner, spawner_cpu),
        ("lineage API call", api, api_cpu),
    ):
        v50, v99 = p(values, 50), p(values, 99)
        print(f"  {label:34} {v50:8.2f} {v99:8.2f} {cpu:8.2f} {v50 / b50:10.1f} {v99 / b99:10.1f}")
    ok = p(access, 99) < TARGET_P99_MS
    print(f"  target access check p99 < {TARGET_P99_MS} ms: {'met' if ok else 'NOT met'}")
    store.dispose()
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--db-url", help="an empty catalog database to fill (it is not cleaned up)")
    parser.add_argument("--postgres", action="store_true", help="use a fresh PostgreSQL database")
    args = parser.parse_args(argv)
    if args.db_url:
        return 0 if run(args.db_url, args.repeat) else 1
    if args.postgres:
        server = os.environ.get("SPACES_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
        name = f"spaces_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            return 0 if run(f"{server.rsplit('/', 1)[0]}/{name}", args.repeat) else 1
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        return 0 if run(f"sqlite:///{tmp}/bench.sqlite", args.repeat) else 1


if __name__ == "__main__":
    sys.exit(main())
