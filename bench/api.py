"""How fast is the Spaces API on a big catalog, next to JupyterHub's own API?

Loads into a new PostgreSQL database (with COPY) a catalog of, at ``--scale 1``:
10,000 users, 2,000 products, 20,000 assets, 150,000 spaces (each with 1-3 products,
0-4 assets and 1-5 members) and 1,000,000 subscriptions; plus one big space with 50
assets and 100 collaborators. Then, in one run:

1. in process, ``--repeat`` times: the pure access decision (``policy.decide``) for
   the big space, and the same decision from the store (load the space, its members'
   roles, the user's subscriptions, decide). Target: the decision < 1 ms.
2. through a real JupyterHub + configurable-http-proxy + the spaces service, with
   ``--clients`` concurrent clients (keep-alive, each its own user and token):
   ``GET /hub/api/user`` (the baseline: JupyterHub's own API, same tokens, same
   proxy), ``GET …/api/v1/spaces`` (my spaces) and ``GET …/api/v1/spaces/{id}/access``
   (one of my spaces, as its owner: every member's decision). Prints p50/p99 latency,
   requests/s and each one's ratio to the baseline. Target: ratio ≤ 1.5.
3. the same three at a fixed offered load (``--rate`` requests/s for ``--rate-seconds``,
   spread over the same clients): requests leave on schedule whatever the answers,
   and each latency counts from the moment its request was due, so a slow answer
   cannot hide the ones queued behind it. Target: p99 ≤ 50 ms at 100 requests/s.

The service keeps answers between requests (``jupyterhub_spaces.service.answers``):
the runs above measure answers served again, as on page views; step 1 also builds one
client's page of my spaces from the store as a request that finds nothing kept does.

    python bench/api.py [--scale 0.02] [--requests 2000] [--clients 50] [--rate 100] [--keep-db]

The database is created on the server named by ``$SPACES_TEST_POSTGRES_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``) and dropped afterwards
unless ``--keep-db``; ``--db-url`` reuses a database already loaded by ``--keep-db``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import psycopg
from sqlalchemy import select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from spaces_hub import API, USERS, SpacesHub, postgres_database  # noqa: E402

from jupyterhub_spaces import orm, policy  # noqa: E402
from jupyterhub_spaces.service.models import space_model  # noqa: E402
from jupyterhub_spaces.service.queries import (  # noqa: E402
    decide_all,
    member_spaces_page,
    required_keys,
    space_views,
    subscriptions_to,
)
from jupyterhub_spaces.store import (  # noqa: E402
    Store,
    catalog_revision,
    space_query,
    space_spec,
    user_subscriptions,
)

FULL = {"users": 10_000, "products": 2_000, "assets": 20_000, "spaces": 150_000, "subscriptions": 1_000_000}
ORGS = 20
BIG_ASSETS = 50
BIG_MEMBERS = 100
ROLES = ("editor", "viewer", "publisher")


def counts(scale: float) -> dict[str, int]:
    c = {k: max(1, int(v * scale)) for k, v in FULL.items()}
    c["users"] = max(c["users"], BIG_MEMBERS + 1)
    c["assets"] = max(c["assets"], BIG_ASSETS)
    c["products"] = max(c["products"], 10)
    c["spaces"] = max(c["spaces"], c["users"])
    return c


def user_name(i: int) -> str:
    return f"user{i:05d}"


# ---------------------------------------------------------------------------
# loading


def _copy(cur, table: str, columns: tuple[str, ...], rows) -> int:
    n = 0
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def load(url: str, c: dict[str, int], seed: int = 7) -> dict:
    """Fill the catalog at ``url`` (schema already at head); return what the
    measurements need (the big space's id, client users and their spaces)."""
    rng = random.Random(seed)
    now = datetime.utcnow()
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    U, P, A, S, SUBS = c["users"], c["products"], c["assets"], c["spaces"], c["subscriptions"]
    t0 = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        _copy(cur, "organizations", ("id", "name", "display_name"),
              ((i + 1, f"org{i}", f"Organization {i}") for i in range(ORGS)))
        _copy(cur, "users", ("id", "name", "org_id", "display_name", "created_at"),
              ((i + 1, user_name(i), i % ORGS + 1, f"User {i}", now) for i in range(U)))
        _copy(cur, "products", ("id", "name", "description", "owner_org_id"),
              ((i + 1, f"product{i:05d}", "", rng.randrange(ORGS) + 1) for i in range(P)))
        asset_product = [i % P + 1 for i in range(A)]
        _copy(cur, "assets",
              ("id", "name", "description", "kind", "location", "product_id", "owner_org_id", "derived",
               "created_by", "created_at"),
              ((i + 1, f"asset{i:06d}", "", "table" if i % 3 else "files", f"t{i}", asset_product[i],
                1, False, "bench", now) for i in range(A)))

        # subscriptions: each user gets the same number, to distinct products and assets
        per_user = max(1, SUBS // U)
        n_products = min(P, max(1, per_user * 3 // 10))
        n_assets = min(A, per_user - n_products)

        def subs():
            sid = 0
            for u in range(U):
                targets = [(p + 1, None) for p in rng.sample(range(P), n_products)]
                targets += [(None, a + 1) for a in rng.sample(range(A), n_assets)]
                for product_id, asset_id in targets:
                    sid += 1
                    r = rng.random()
                    status = "active" if r < 0.9 else ("requested" if r < 0.95 else "revoked")
                    r = rng.random()
                    expires = None if r < 0.8 else (now + timedelta(days=90) if r < 0.95 else now - timedelta(days=1))
                    yield (sid, u + 1, product_id, asset_id, "full" if rng.random() < 0.8 else "spaces",
                           status, expires, now, now, "bench")

        n_subs = _copy(cur, "subscriptions",
                       ("id", "user_id", "product_id", "asset_id", "level", "status", "expires_at",
                        "requested_at", "updated_at", "granted_by"), subs())

        # spaces: owners round-robin (at most 15 each at full scale); the big one last
        big = S + 1
        _copy(cur, "spaces",
              ("id", "slug", "display_name", "description", "owner_id", "tools", "profile", "workers",
               "created_at", "updated_at"),
              ((i + 1, f"s{i}", f"Space {i}", "", i % U + 1, '["jupyterlab"]', "small", 0, now, now)
               for i in range(S + 1)))
        members: dict[int, list[tuple[int, str]]] = {}

        def space_products():
            for s in range(1, S + 1):
                for pos, p in enumerate(rng.sample(range(P), rng.randint(1, 3))):
                    yield (s, p + 1, pos)
            for pos, a in enumerate(rng.sample(range(A), 3)):
                yield (big, asset_product[a], pos)

        def space_assets():
            for s in range(1, S + 1):
                for pos, a in enumerate(rng.sample(range(A), rng.randint(0, 4))):
                    yield (s, a + 1, pos)
            for pos, a in enumerate(rng.sample(range(A), BIG_ASSETS)):
                yield (big, a + 1, pos)

        def collaborators():
            cid = 0
            for s in range(1, S + 2):
                owner = (s - 1) % U
                others = rng.sample(range(U), rng.randint(0, 4)) if s != big else \
                    [u for u in range(1, BIG_MEMBERS + 1)]
                rows = [(owner, "owner")] + [(u, rng.choice(ROLES)) for u in others if u != owner]
                if s <= 3 * U or s == big:
                    members[s] = rows
                for u, role in rows:
                    cid += 1
                    yield (cid, s, u + 1, role, now)

        _copy(cur, "space_products", ("space_id", "product_id", "position"), space_products())
        _copy(cur, "space_assets", ("space_id", "asset_id", "position"), space_assets())
        n_members = _copy(cur, "collaborators", ("id", "space_id", "user_id", "role", "added_at"), collaborators())
        for table, n in (("organizations", ORGS), ("users", U), ("products", P), ("assets", A),
                         ("subscriptions", n_subs), ("spaces", S + 1), ("collaborators", n_members)):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", (n,))
        conn.commit()
        conn.autocommit = True
        cur.execute("ANALYZE")
    print(f"loaded {U} users, {P} products, {A} assets, {S + 1} spaces, {n_subs} subscriptions, "
          f"{n_members} memberships in {time.perf_counter() - t0:.1f} s", flush=True)
    return {"big": big}


# ---------------------------------------------------------------------------
# measuring


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def row(label: str, ms: list[float], seconds: float | None = None, base: float | None = None) -> str:
    p50, p99 = pct(ms, 50), pct(ms, 99)
    out = f"{label:<42} p50 {p50:8.3f} ms  p99 {p99:8.3f} ms"
    if seconds:
        out += f"  {len(ms) / seconds:8.0f} req/s"
    if base:
        out += f"  ratio p50 {p50 / base:5.2f}"
    return out


def in_process(url: str, big: int, repeat: int) -> None:
    store = Store(url)
    try:
        with store.transaction() as db:
            space = db.scalar(space_query().where(orm.Space.id == big))
            owner = space.owner.name
            member = space.collaborators[-1].user.name
            spec = space_spec(db, space)
            subs = user_subscriptions(db, [member])
        now = datetime.utcnow()
        print(f"big space: {len(spec.assets)} assets, {len(spec.collaborators)} members; "
              f"{member} has {len(subs)} subscriptions", flush=True)

        pure = []
        for _ in range(repeat):
            t = time.perf_counter()
            policy.decide(member, spec, subs, now)
            pure.append((time.perf_counter() - t) * 1000)

        # what GET …/access does: the space as a light view, the subscriptions, decide
        stored = []
        for _ in range(repeat):
            t = time.perf_counter()
            with store.transaction() as db:
                view = space_views(db, [big])[big]
                spec_ = space_spec(db, view)
                decide_all(spec_, subscriptions_to(db, [member], required_keys([spec_], True)), [member], now, True)
            stored.append((time.perf_counter() - t) * 1000)

        members = []
        for _ in range(max(10, repeat // 10)):
            t = time.perf_counter()
            with store.transaction() as db:
                view = space_views(db, [big])[big]
                names = [c.user.name for c in view.collaborators]
                spec_ = space_spec(db, view)
                decide_all(spec_, subscriptions_to(db, names, required_keys([spec_], True)), names, now, True)
            members.append((time.perf_counter() - t) * 1000)

        # what GET …/spaces builds when nothing is kept: one client's first page
        client = user_name(0)
        with store.transaction() as db:
            user_id = db.scalar(select(orm.User.id).where(orm.User.name == client))
        page = []
        for _ in range(max(10, repeat // 10)):
            t = time.perf_counter()
            with store.transaction() as db:
                catalog_revision(db)
                _total, ids, roles = member_spaces_page(db, user_id, 0, 50)
                views = space_views(db, ids)
                specs = {i: space_spec(db, views[i]) for i in ids}
                subs = subscriptions_to(db, [client], required_keys(specs.values(), True))
                items = [space_model(views[i], roles[i], decide_all(specs[i], subs, [client], now, True)[client])
                         for i in ids]
                json.dumps(items)
            page.append((time.perf_counter() - t) * 1000)

        revision = []
        for _ in range(repeat):
            t = time.perf_counter()
            with store.transaction() as db:
                catalog_revision(db)
            revision.append((time.perf_counter() - t) * 1000)

        print(row("decision, pure policy (target < 1 ms)", pure))
        print(row("decision from the store (load + subs)", stored))
        print(row(f"all {len(spec.collaborators)} members' decisions from store", members))
        print(row(f"my spaces built, nothing kept ({len(ids)} spaces)", page))
        print(row("catalog revision read (per request)", revision))
        _ = owner
    finally:
        store.dispose()


async def load_test(urls: dict[str, str], tokens: list[str], total: int, clients: int) -> tuple[list[float], float]:
    """``total`` GETs spread over ``clients`` concurrent clients; client i always
    sends ``tokens[i]`` and fetches ``urls[token]``."""
    latencies: list[float] = []
    remaining = total

    async def client(token: str):
        nonlocal remaining
        headers = {"Authorization": f"token {token}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            while remaining > 0:
                remaining -= 1
                t = time.perf_counter()
                async with session.get(urls[token]) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"GET {urls[token]} -> {r.status}: {await r.text()}")
                latencies.append((time.perf_counter() - t) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(client(tokens[i % len(tokens)]) for i in range(clients)))
    return latencies, time.perf_counter() - start


async def fixed_rate(urls: dict[str, str], tokens: list[str], rate: float, seconds: float,
                     clients: int) -> tuple[list[float], float]:
    """An open loop: request i is due at ``i / rate`` s and leaves then, whatever the
    earlier answers; client ``i % clients`` sends it. Latency counts from when it was due."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    sessions = [aiohttp.ClientSession(headers={"Authorization": f"token {tokens[i % len(tokens)]}"})
                for i in range(clients)]

    async def one(i: int) -> None:
        session = sessions[i % clients]
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - loop.time()))
        url = urls[tokens[i % len(tokens)]]
        async with session.get(url) as r:
            await r.read()
            if r.status != 200:
                raise RuntimeError(f"GET {url} -> {r.status}: {await r.text()}")
        latencies.append((loop.time() - due) * 1000)

    try:
        start = loop.time() + 0.1
        await asyncio.gather(*(one(i) for i in range(int(rate * seconds))))
        return latencies, loop.time() - start
    finally:
        for session in sessions:
            await session.close()


def through_the_hub(url: str, info: dict, args) -> None:
    names = [user_name(i) for i in range(args.clients)]
    extra = f"c.Authenticator.allowed_users = {set(USERS) | set(names)!r}\n"
    workdir = Path(tempfile.mkdtemp(prefix="spaces-bench-"))
    hub = SpacesHub(workdir, url, extra_config=extra)
    hub.start(timeout=180)
    try:
        tokens = {name: hub.api_token(name) for name in names}
        store = Store(url)
        with store.transaction() as db:
            owned = dict(db.execute(
                select(orm.User.name, orm.Space.id)
                .join(orm.Space, orm.Space.owner_id == orm.User.id)
                .where(orm.User.name.in_(names)).order_by(orm.Space.id.desc())
            ).all())
            n_spaces = {
                name: len(db.scalars(select(orm.Collaborator.space_id).join(orm.User).where(orm.User.name == name)).all())
                for name in names[:3]
            }
        store.dispose()
        print(f"clients' memberships (first three): {n_spaces}", flush=True)
        token_list = [tokens[n] for n in names]
        endpoints = {
            "GET /hub/api/user (baseline)": {tokens[n]: f"{hub.url}/hub/api/user" for n in names},
            "GET api/v1/spaces (my spaces)": {tokens[n]: f"{hub.url}{API}spaces" for n in names},
            "GET api/v1/spaces/{id}/access (owner)": {
                tokens[n]: f"{hub.url}{API}spaces/{owned[n]}/access" for n in names
            },
        }
        # warm up every path and the service's token cache
        for urls in endpoints.values():
            asyncio.run(load_test(urls, token_list, args.clients * 4, args.clients))
        results = {}
        for label, urls in endpoints.items():
            results[label] = asyncio.run(load_test(urls, token_list, args.requests, args.clients))
        base = pct(results["GET /hub/api/user (baseline)"][0], 50)
        print(f"\n{args.clients} concurrent clients, {args.requests} requests per endpoint, through the proxy:")
        for label, (ms, seconds) in results.items():
            print(row(label, ms, seconds, base))
        if args.rate:
            fixed = {label: asyncio.run(fixed_rate(urls, token_list, args.rate, args.rate_seconds, args.clients))
                     for label, urls in endpoints.items()}
            base = pct(fixed["GET /hub/api/user (baseline)"][0], 50)
            print(f"\noffered load {args.rate:g} requests/s for {args.rate_seconds:g} s per endpoint "
                  f"(latency from when each request was due; target p99 ≤ 50 ms):")
            for label, (ms, seconds) in fixed.items():
                print(row(label, ms, seconds, base))
    finally:
        hub.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full catalog (default 1)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per endpoint")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--repeat", type=int, default=1000, help="in-process repetitions")
    parser.add_argument("--rate", type=float, default=100, help="fixed offered load, requests/s (0: skip)")
    parser.add_argument("--rate-seconds", type=float, default=20, help="how long each fixed load runs")
    parser.add_argument("--db-url", help="an already loaded database (skips loading)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database afterwards")
    args = parser.parse_args(argv)
    c = counts(args.scale)

    def run(url: str, info: dict) -> None:
        in_process(url, info["big"], args.repeat)
        through_the_hub(url, info, args)

    if args.db_url:
        store = Store(args.db_url)
        with store.transaction() as db:
            big = db.scalar(select(orm.Space.id).order_by(orm.Space.id.desc()).limit(1))
        store.dispose()
        run(args.db_url, {"big": big})
        return 0
    with postgres_database("spaces_bench") as url:
        Store(url).dispose()  # the schema at head
        info = load(url, c)
        run(url, info)
        if args.keep_db:
            print(f"\nkeeping {url}; rerun with --db-url {url}")
            input("press enter to drop it ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
