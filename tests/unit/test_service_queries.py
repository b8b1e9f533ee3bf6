"""The service's light read path gives the policy exactly what the ORM rows give it,
with a number of queries that does not grow with the number of spaces."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import event, select

from jupyterhub_spaces import orm
from jupyterhub_spaces.service.queries import member_spaces_page, space_views
from jupyterhub_spaces.service.models import space_model
from jupyterhub_spaces.store import Store, record_lineage, space_query, space_spec


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    yield s
    s.dispose()


def build(store: Store, n_spaces: int, seed: int = 1) -> int:
    """A catalog where user 'ann' is a member of ``n_spaces`` spaces, one asset of each
    of them derived from a product and an asset. Returns ann's id."""
    rng = random.Random(seed)
    with store.transaction() as db:
        org = orm.Organization(name="o")
        db.add(org)
        db.flush()
        users = [orm.User(name=n, org_id=org.id) for n in ("ann", "ben", "cat")]
        db.add_all(users)
        products = [orm.Product(name=f"p{i}", owner_org_id=org.id) for i in range(4)]
        db.add_all(products)
        db.flush()
        assets = [orm.Asset(name=f"a{i}", kind="table", product_id=products[i % 4].id, owner_org_id=org.id)
                  for i in range(8)]
        db.add_all(assets)
        db.flush()
        for i in range(n_spaces):
            derived = orm.Asset(name=f"d{i}", kind="table", derived=True, owner_org_id=org.id)
            db.add(derived)
            db.flush()
            record_lineage(db, derived.id, [products[i % 4].id], [assets[i % 8].id])
            owner = users[i % 3]
            space = orm.Space(slug=f"s{i}", display_name=f"S {i}", owner_id=owner.id, tools=["jupyterlab"],
                              profile="small")
            space.products = [orm.SpaceProduct(product_id=p.id, position=k)
                              for k, p in enumerate(rng.sample(products, 2))]
            space.assets = [orm.SpaceAsset(asset_id=a.id, position=k)
                            for k, a in enumerate([*rng.sample(assets, 2), derived])]
            members = {owner.name: "owner"}
            for u in users:
                members.setdefault(u.name, rng.choice(["editor", "viewer"]))
            by_name = {u.name: u for u in users}
            space.collaborators = [orm.Collaborator(user_id=by_name[n].id, role=r) for n, r in members.items()]
            db.add(space)
        db.flush()
        return users[0].id


def count_queries(store: Store, fn):
    seen = []
    listener = lambda *args: seen.append(args[2])  # noqa: E731
    event.listen(store.engine, "before_cursor_execute", listener)
    try:
        with store.transaction() as db:
            result = fn(db)
    finally:
        event.remove(store.engine, "before_cursor_execute", listener)
    return len(seen), result


@pytest.mark.parametrize("n", [1, 7])
def test_views_give_the_policy_what_orm_rows_give(store, n):
    ann = build(store, n)
    with store.transaction() as db:
        total, ids, roles = member_spaces_page(db, ann, 0, 50)
        assert total == n and len(ids) == n
        views = space_views(db, ids)
        rows = {s.id: s for s in db.scalars(space_query().where(orm.Space.id.in_(ids)))}
        for i in ids:
            assert space_spec(db, views[i]) == space_spec(db, rows[i])
            assert space_model(views[i], roles[i]) == space_model(rows[i], roles[i])


def test_query_count_does_not_grow_with_the_spaces(store):
    ann = build(store, 12)
    few, _ = count_queries(store, lambda db: space_views(db, member_spaces_page(db, ann, 0, 2)[1]))
    many, views = count_queries(store, lambda db: space_views(db, member_spaces_page(db, ann, 0, 12)[1]))
    assert len(views) == 12
    assert few == many == 4


def test_pages_and_totals(store):
    ann = build(store, 5)
    with store.transaction() as db:
        assert member_spaces_page(db, ann, 3, 10)[:2] == (5, member_spaces_page(db, ann, 0, 10)[1][3:])
        assert member_spaces_page(db, ann, 10, 10)[:2] == (5, [])
        owned = member_spaces_page(db, ann, 0, 10, role="owner")
        assert set(owned[2].values()) == {"owner"}
        expected = db.scalars(select(orm.Space.id).where(orm.Space.owner_id == ann)).all()
        assert sorted(owned[1]) == sorted(expected)


def test_filtered_subscriptions_decide_like_all_of_them(store):
    """Handing the policy only the subscriptions to what a space requires changes no
    decision (statuses, levels and expiries drawn at random)."""
    from datetime import timedelta

    from jupyterhub_spaces import policy
    from jupyterhub_spaces.store import decide_all, required_keys, subscriptions_to
    from jupyterhub_spaces.store import user_subscriptions
    from jupyterhub_spaces.utils import utcnow

    build(store, 6)
    rng = random.Random(3)
    now = utcnow()
    with store.transaction() as db:
        users = db.scalars(select(orm.User)).all()
        for asset in db.scalars(select(orm.Asset)).all():
            for user in users:
                if rng.random() < 0.6:
                    db.add(orm.Subscription(
                        user_id=user.id, asset_id=asset.id, level=rng.choice(["full", "spaces"]),
                        status=rng.choice(["active", "active", "requested", "revoked"]),
                        expires_at=rng.choice([None, now - timedelta(days=1), now + timedelta(days=1)])))
        for product in db.scalars(select(orm.Product)).all():
            for user in users:
                if rng.random() < 0.5:
                    db.add(orm.Subscription(user_id=user.id, product_id=product.id,
                                            level=rng.choice(["full", "spaces"]), status="active"))
    names = [u.name for u in users]
    with store.transaction() as db:
        views = space_views(db, db.scalars(select(orm.Space.id)).all())
        seen_modes = set()
        for lineage in (True, False):
            for view in views.values():
                spec = space_spec(db, view)
                few = subscriptions_to(db, names, required_keys([spec], lineage))
                everything = user_subscriptions(db, names)
                got = decide_all(spec, few, names, now, lineage)
                for name in names:
                    want = policy.decide(name, spec, everything, now, lineage)
                    assert got[name] == want
                    seen_modes.add(want.mode)
        assert policy.Mode.locked in seen_modes and seen_modes & {policy.Mode.sandbox, policy.Mode.workbench}
