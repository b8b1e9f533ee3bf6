"""The grants of the space databases, checked by connecting as each member's own role
to a real PostgreSQL server: the server refuses, not our code."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from psycopg import errors
from sqlalchemy import delete, select, update

from jupyterhub_spaces import orm
from jupyterhub_spaces.databases import ForeignData, PurgeNotConfirmed
from jupyterhub_spaces.databases.lifecycle import reconcile
from jupyterhub_spaces.databases.postgres import schema_name
from jupyterhub_spaces.settings import SpacesSettings
from jupyterhub_spaces.utils import utcnow


def test_member_reads_asset_schema_and_cannot_write_it(world):
    creds = world.activate(world.retail, "alice")
    with world.connect(creds, "asset") as conn:
        rows = conn.execute("SELECT store, revenue FROM sales ORDER BY day").fetchall()
        assert [r[0] for r in rows] == ["leeds", "york"]
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
            conn.execute("INSERT INTO sales VALUES ('2024-03-03', 'hull', 1)")
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
            conn.execute("DELETE FROM sales")
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
            conn.execute(f"CREATE TABLE {schema_name(world.retail, 'asset')}.mine (a int)")
    # the owner of the space is refused too: nobody writes asset data
    assert creds.connections["asset"].read_only


def test_asset_schema_holds_exactly_the_space_tables(world):
    creds = world.activate(world.retail, "carol")
    with world.connect(creds, "asset") as conn:
        names = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema_name(world.retail, "asset"),),
            )
        }
    # the retail product's table asset; not weather (another space), not salaries
    # (no asset), not the files asset
    assert names == {"sales"}


def test_no_role_reads_another_space_or_the_sources(world):
    eve = world.activate(world.weather, "eve")  # the other space exists, with its data
    with world.connect(eve, "collaborative") as conn:
        conn.execute("CREATE TABLE eve_notes (n int)")
    creds = world.activate(world.retail, "alice")
    with world.connect(creds, "collaborative") as conn:
        for sql in (
            f"SELECT * FROM {schema_name(world.weather, 'asset')}.weather",
            f"SELECT * FROM {schema_name(world.weather, 'collaborative')}.eve_notes",
            "SELECT * FROM sources.sales",
            "SELECT * FROM sources.salaries",
        ):
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(sql)
        # dropping the group role leaves the login with nothing at all
        conn.execute("SET ROLE NONE")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(f"SELECT * FROM {schema_name(world.retail, 'asset')}.sales")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM sources.sales")
        # and it cannot become another space's group
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(f'SET ROLE "{world.dbs.group(world.weather, "owner")}"')


@pytest.mark.parametrize(
    "user, write_collab, write_publish",
    [("alice", True, True), ("bob", True, False), ("carol", False, False), ("pat", False, True)],
)
def test_collaborative_and_publish_grants_per_role(world, user, write_collab, write_publish):
    owner = world.activate(world.retail, "alice")
    with world.connect(owner, "collaborative") as conn:
        conn.execute("CREATE TABLE notes (id serial primary key, body text)")
        conn.execute("INSERT INTO notes (body) VALUES ('from alice')")
    with world.connect(owner, "publish") as conn:
        conn.execute("CREATE TABLE result (x int)")
        conn.execute("INSERT INTO result VALUES (1)")

    creds = world.activate(world.retail, user)
    with world.connect(creds, "collaborative") as conn:
        assert conn.execute("SELECT body FROM notes").fetchall() == [("from alice",)]
        if write_collab:
            conn.execute(f"INSERT INTO notes (body) VALUES ('from {user}')")
            conn.execute(f"CREATE TABLE own_{user} (a int)")
        else:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("INSERT INTO notes (body) VALUES ('nope')")
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("CREATE TABLE mine (a int)")
    with world.connect(creds, "publish") as conn:
        assert conn.execute("SELECT x FROM result").fetchall() == [(1,)]
        if write_publish:
            conn.execute("INSERT INTO result VALUES (2)")
        else:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("INSERT INTO result VALUES (2)")
    assert creds.connections["collaborative"].read_only is not write_collab
    assert creds.connections["publish"].read_only is not write_publish


def test_tables_one_editor_makes_are_written_by_the_others(world):
    bob = world.activate(world.retail, "bob")
    with world.connect(bob, "collaborative") as conn:
        conn.execute("CREATE TABLE shared (v int)")
    alice = world.activate(world.retail, "alice")
    with world.connect(alice, "collaborative") as conn:
        conn.execute("INSERT INTO shared VALUES (7)")
    carol = world.activate(world.retail, "carol")
    with world.connect(carol, "collaborative") as conn:
        assert conn.execute("SELECT v FROM shared").fetchall() == [(7,)]


def test_removed_member_credentials_stop_working(world):
    creds = world.activate(world.retail, "bob")
    open_conn = world.connect(creds, "collaborative")
    assert open_conn.execute("SELECT 1").fetchone() == (1,)
    with world.store.transaction() as db:
        db.execute(
            delete(orm.Collaborator).where(
                orm.Collaborator.space_id == world.retail,
                orm.Collaborator.user_id == world.ids["user:bob"],
            )
        )
    revoked = reconcile(world.store, world.dbs, lineage_enforced=True)
    assert [(r.user, r.space_id) for r in revoked] == [("bob", world.retail)]
    with pytest.raises(psycopg.OperationalError):
        world.connect(creds, "collaborative")
    # the connection that was open is closed by the server, not left working
    with pytest.raises(psycopg.OperationalError):
        open_conn.execute("SELECT 1")
    open_conn.close()


def test_lapsed_subscription_revokes_at_reconcile(world):
    alice = world.activate(world.retail, "alice")
    carol = world.activate(world.retail, "carol")
    with world.store.transaction() as db:
        db.execute(
            update(orm.Subscription)
            .where(orm.Subscription.user_id == world.ids["user:carol"])
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    revoked = reconcile(world.store, world.dbs, lineage_enforced=True)
    assert [r.user for r in revoked] == ["carol"]
    with pytest.raises(psycopg.OperationalError):
        world.connect(carol, "asset")
    with world.connect(alice, "asset") as conn:  # the others keep working
        assert conn.execute("SELECT count(*) FROM sales").fetchone() == (2,)


def test_suspend_revokes_and_data_stays_for_the_next_activation(world):
    first = world.activate(world.retail, "alice")
    with world.connect(first, "collaborative") as conn:
        conn.execute("CREATE TABLE findings (n int)")
        conn.execute("INSERT INTO findings VALUES (42)")
    assert world.dbs.revoke(world.retail, "alice")  # suspend
    with pytest.raises(psycopg.OperationalError):
        world.connect(first, "collaborative")
    second = world.activate(world.retail, "alice")
    assert second.connections["collaborative"].details["password"] != first.connections[
        "collaborative"
    ].details["password"]
    with world.connect(second, "collaborative") as conn:
        assert conn.execute("SELECT n FROM findings").fetchall() == [(42,)]


def test_deleting_a_space_keeps_its_data_until_a_confirmed_purge(world):
    creds = world.activate(world.retail, "alice")
    with world.connect(creds, "collaborative") as conn:
        conn.execute("CREATE TABLE kept (n int)")
    with world.store.transaction() as db:
        db.delete(db.get(orm.Space, world.retail))
    reconcile(world.store, world.dbs, lineage_enforced=True)
    assert world.dbs.issued() == []  # the space is gone: so are its logins
    assert world.dbs.exists(world.retail)
    with pytest.raises(PurgeNotConfirmed, match="repeat the space id"):
        world.dbs.purge(world.retail)
    with pytest.raises(PurgeNotConfirmed):
        world.dbs.purge(world.retail, confirm=world.weather)
    assert world.dbs.exists(world.retail)
    world.dbs.purge(world.retail, confirm=world.retail)
    assert not world.dbs.exists(world.retail)


def test_a_new_space_never_inherits_a_deleted_space_data(world):
    data = world.space_data(world.retail)
    world.dbs.prepare(data)
    impostor = type(data)(data.id, "other", data.created_at + timedelta(seconds=1), data.tables)
    with pytest.raises(ForeignData, match="earlier space"):
        world.dbs.prepare(impostor)


def test_asset_copies_when_sources_are_elsewhere(world, pg_url):
    other = pg_url()
    with psycopg.connect(other.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute("CREATE TABLE sales (day date, store text, revenue numeric(10,2))")
        conn.execute("INSERT INTO sales VALUES ('2024-01-01', 'hull', 5)")
    world.dbs.source_db_url = other
    creds = world.activate(world.retail, "bob")
    with world.connect(creds, "asset") as conn:
        assert conn.execute("SELECT store FROM sales").fetchall() == [("hull",)]
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("UPDATE sales SET store = 'x'")


async def test_the_service_reconciler_revokes_a_removed_member(world):
    from jupyterhub_spaces.databases.lifecycle import Reconciler

    creds = world.activate(world.retail, "carol")
    with world.store.transaction() as db:
        db.execute(
            delete(orm.Collaborator).where(
                orm.Collaborator.space_id == world.retail,
                orm.Collaborator.user_id == world.ids["user:carol"],
            )
        )
    settings = SpacesSettings(source_db_url=world.dbs.source_db_url, db_url=world.store.url)
    reconciler = Reconciler(world.store, world.dbs, settings, interval=0.2, snapshot_prefix="spaces_derived_")
    reconciler.start()
    import asyncio

    try:
        for _ in range(100):
            if not world.dbs.issued():
                break
            await asyncio.sleep(0.2)
    finally:
        reconciler.stop()
    with pytest.raises(psycopg.OperationalError):
        world.connect(creds, "asset")
    with world.store.transaction() as db:
        events = db.scalars(select(orm.AuditEvent).where(orm.AuditEvent.action == "databases.revoke")).all()
        assert [(e.detail["user"], e.detail["reason"]) for e in events] == [("carol", "no longer a member of the space")]


def test_concurrent_activations_of_different_spaces(world):
    """Roles and the database's grants are shared by every space: activations running
    at the same time must not trip over each other."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(world.retail, u) for u in ("alice", "bob", "carol", "pat")] + [(world.weather, "eve")] * 2
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: world.activate(*job), jobs))
    for creds in results:
        with world.connect(creds, "asset") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    with ThreadPoolExecutor(len(jobs)) as pool:
        assert sum(pool.map(lambda job: world.dbs.revoke(*job), jobs)) == 5
    assert world.dbs.issued() == []
