"""Property: for random catalogs, the access decision the service returns through the
real hub equals the pure policy's decision computed from the same drawn data.

The space may also have held products and assets that were removed from it since
(drawn too): they stay in its taint, and the expected decision counts them.

The expected decision is built straight from what hypothesis drew (not read back from
the database), so the store's queries, the lineage walk, the handler and the JSON
shape are all under test, against SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spaces_hub import API, api_json, clear_catalog
from sqlalchemy import delete

from jupyterhub_spaces import orm, policy
from jupyterhub_spaces.store import record_lineage
from jupyterhub_spaces.utils import utcnow

pytestmark = pytest.mark.slow

USERS = ["alice", "bob", "carol", "dave", "admin"]
ROLES = [r.value for r in policy.Role if r != policy.Role.owner]


@st.composite
def catalogs(draw):
    n_products = draw(st.integers(1, 3))
    products = [f"p{i}" for i in range(n_products)]
    assets = [(p, f"a{j}") for p in products for j in range(draw(st.integers(1, 2)))]
    derived = None
    if draw(st.booleans()):
        derived = {
            "products": draw(st.lists(st.sampled_from(products), unique=True, max_size=2)),
            "assets": draw(st.lists(st.sampled_from(assets), unique=True, max_size=2)),
        }
        if not derived["products"] and not derived["assets"]:
            derived["assets"] = [assets[0]]
    owner = draw(st.sampled_from(USERS))
    others = [u for u in USERS if u != owner]
    collaborators = draw(
        st.dictionaries(st.sampled_from(others), st.sampled_from(ROLES), max_size=len(others))
    )
    space_products = draw(st.lists(st.sampled_from(products), unique=True, max_size=n_products))
    data_assets = assets + (["derived"] if derived else [])
    space_assets = draw(st.lists(st.sampled_from(data_assets), unique=True, max_size=3))
    # held once, removed since: rows of them may remain in the space's databases
    removed_products = draw(st.lists(
        st.sampled_from(products).filter(lambda p: p not in space_products), unique=True, max_size=2))
    removed_assets = draw(st.lists(
        st.sampled_from(data_assets).filter(lambda a: a not in space_assets), unique=True, max_size=2))
    targets = [("product", p) for p in products] + [("asset", a) for a in assets]
    subscription = st.tuples(
        st.sampled_from(["full", "spaces"]),
        st.sampled_from(["requested", "active", "active", "active", "revoked"]),
        st.sampled_from([None, None, "past", "future"]),
    )
    subs = {
        user: draw(st.dictionaries(st.sampled_from(targets), subscription, max_size=len(targets)))
        for user in USERS
    }
    return {
        "products": products,
        "assets": assets,
        "derived": derived,
        "owner": owner,
        "collaborators": collaborators,
        "space_products": space_products,
        "space_assets": space_assets,
        "removed_products": removed_products,
        "removed_assets": removed_assets,
        "subs": subs,
    }


def load(store, c, now):
    """Write the drawn catalog; return the ids of everything by its drawn name."""
    clear_catalog(store)
    ids = {}
    with store.transaction() as db:
        org = orm.Organization(name="org")
        db.add(org)
        db.flush()
        users = {name: orm.User(name=name, org_id=org.id) for name in USERS}
        db.add_all(users.values())
        for name in c["products"]:
            p = orm.Product(name=name, owner_org_id=org.id)
            db.add(p)
            db.flush()
            ids[("product", name)] = p.id
        for product, name in c["assets"]:
            a = orm.Asset(name=name, kind="table", product_id=ids[("product", product)], owner_org_id=org.id)
            db.add(a)
            db.flush()
            ids[("asset", (product, name))] = a.id
        if c["derived"]:
            d = orm.Asset(name="derived", kind="table", derived=True, owner_org_id=org.id)
            db.add(d)
            db.flush()
            ids[("asset", "derived")] = d.id
            record_lineage(db, d.id, [ids[("product", p)] for p in c["derived"]["products"]],
                           [ids[("asset", a)] for a in c["derived"]["assets"]])
        db.flush()
        for user, subs in c["subs"].items():
            for (kind, name), (level, status, expiry) in subs.items():
                expires = {None: None, "past": now - timedelta(days=1), "future": now + timedelta(days=30)}[expiry]
                key = {"product_id": ids[(kind, name)]} if kind == "product" else {"asset_id": ids[(kind, name)]}
                db.add(orm.Subscription(user_id=users[user].id, level=level, status=status, expires_at=expires, **key))
        space = orm.Space(slug="prop", display_name="prop", owner_id=users[c["owner"]].id,
                          tools=["jupyterlab"], profile="small")
        members = [(c["owner"], "owner"), *c["collaborators"].items()]
        space.collaborators = [orm.Collaborator(user_id=users[u].id, role=r) for u, r in members]
        db.add(space)
        db.flush()
        ids["space"] = space.id
        # the space first held the removed data too (products, then assets, in order)
        for i, p in enumerate(c["space_products"] + c["removed_products"]):
            db.add(orm.SpaceProduct(space_id=space.id, product_id=ids[("product", p)], position=i))
            db.flush()
        for i, a in enumerate(c["space_assets"] + c["removed_assets"]):
            db.add(orm.SpaceAsset(space_id=space.id, asset_id=ids[("asset", a)], position=i))
            db.flush()
    with store.transaction() as db:
        db.execute(delete(orm.SpaceProduct).where(orm.SpaceProduct.product_id.in_(
            [ids[("product", p)] for p in c["removed_products"]])))
        db.execute(delete(orm.SpaceAsset).where(orm.SpaceAsset.asset_id.in_(
            [ids[("asset", a)] for a in c["removed_assets"]])))
    return ids


def expected(c, ids, now):
    """The pure policy's decisions, from the drawn data alone."""
    def target(kind, name):
        label = name if kind == "product" else name[1]
        return policy.Target(kind, ids[(kind, name)], label)

    def primary(asset):
        product, name = asset
        return policy.AssetRef(ids[("asset", asset)], name, ids[("product", product)], product)

    def ref(a):
        if a != "derived":
            return primary(a)
        return policy.AssetRef(
            ids[("asset", "derived")], "derived",
            upstream_products=tuple(sorted((target("product", p) for p in c["derived"]["products"]),
                                           key=lambda t: t.id)),
            upstream_assets=tuple(sorted((primary(x) for x in c["derived"]["assets"]), key=lambda r: r.id)),
        )

    spec = policy.SpaceSpec(
        id=ids["space"],
        owner=c["owner"],
        products=tuple(target("product", p) for p in c["space_products"]),
        assets=tuple(ref(a) for a in c["space_assets"]),
        collaborators=((c["owner"], policy.Role.owner),
                       *((u, policy.Role(r)) for u, r in c["collaborators"].items())),
        taint_products=tuple(target("product", p) for p in c["space_products"] + c["removed_products"]),
        taint_assets=tuple(ref(a) for a in c["space_assets"] + c["removed_assets"]),
    )
    subs = []
    for user, drawn in c["subs"].items():
        for (kind, name), (level, status, expiry) in drawn.items():
            expires = {None: None, "past": now - timedelta(days=1), "future": now + timedelta(days=30)}[expiry]
            subs.append(policy.Subscription(user, target(kind, name), policy.Level(level),
                                            policy.SubscriptionStatus(status), expires))
    return {u: policy.decide(u, spec, subs, now, lineage_enforced=True) for u in USERS}


def summary_of_decision(d: policy.Decision):
    return (
        d.mode.value,
        d.role.value if d.role else None,
        sorted((m.target.kind, m.target.id, m.reason, m.via.id if m.via else None) for m in d.missing),
        sorted((t.kind, t.id) for t in d.sandboxed_by),
    )


def summary_of_response(body):
    return (
        body["mode"],
        body["role"],
        sorted((m["kind"], m["id"], m["reason"], m["via"]["id"] if m["via"] else None) for m in body["missing"]),
        sorted((t["kind"], t["id"]) for t in body["sandboxed_by"]),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=catalogs())
def test_service_decision_equals_policy(hub, store, c):
    now = utcnow()
    ids = load(store, c, now)
    want = expected(c, ids, now)
    for user in USERS:
        r = hub.token_session(user).get(f"{API}spaces/{ids['space']}/access")
        if want[user].mode == policy.Mode.not_member:
            assert r.status_code == 404, r.text
            continue
        body = api_json(r)
        assert r.status_code == 200, body
        assert summary_of_response(body) == summary_of_decision(want[user]), (user, c)
        assert body["reason"] == want[user].reason
        # the list of my spaces (read on another path) says the same
        listed = {x["id"]: x for x in api_json(hub.token_session(user).get(API + "spaces"))["items"]}
        assert listed[ids["space"]]["access"]["mode"] == want[user].mode.value
        assert listed[ids["space"]]["access"]["reason"] == want[user].reason
