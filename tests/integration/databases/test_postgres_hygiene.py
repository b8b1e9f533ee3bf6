"""What a member's PostgreSQL login reaches beyond its grants: the server's other
databases, and the names PostgreSQL shows every login (roles, role comments,
schemas, databases). Attacked from real member logins on a real server."""

from __future__ import annotations

import re

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy import delete, update
from sqlalchemy.engine import make_url

from jupyterhub_spaces import orm
from jupyterhub_spaces.databases.lifecycle import reconcile

#: the members and the space eve (of space weather) must not learn of
OTHERS = ("alice", "bob", "carol", "pat", "retail", "Retail")


def elsewhere(creds, dbname: str) -> str:
    """The member's own login and password, aimed at another database."""
    info = conninfo_to_dict(creds.connections["collaborative"].url)
    info["dbname"] = dbname
    info.pop("options", None)
    return make_conninfo(**info)


@pytest.mark.parametrize("target", ["catalog", "postgres", "template1"])
def test_member_login_connects_to_the_space_databases_only(world, target):
    creds = world.activate(world.retail, "bob")
    with world.connect(creds, "collaborative") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    dbname = make_url(world.store.url).database if target == "catalog" else target
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(elsewhere(creds, dbname), connect_timeout=5)


def test_the_catalog_still_works_after_closing_its_database(world):
    world.activate(world.retail, "bob")
    with world.store.transaction() as db:  # the hub's own connection keeps working
        assert db.get(orm.Space, world.retail).slug == "retail"


def _visible_text(conn, prefix: str, databases: tuple[str, ...]) -> str:
    """Everything PostgreSQL shows this login about this hub's roles and databases."""
    rows = []
    rows += conn.execute(
        "SELECT rolname, shobj_description(oid, 'pg_authid') FROM pg_roles WHERE starts_with(rolname, %s)",
        (prefix,),
    ).fetchall()
    rows += conn.execute(
        "SELECT d.description FROM pg_shdescription d JOIN pg_roles r ON r.oid = d.objoid "
        "WHERE starts_with(r.rolname, %s)",
        (prefix,),
    ).fetchall()
    rows += conn.execute(
        "SELECT r.rolname, s.setconfig::text FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
        "WHERE starts_with(r.rolname, %s)",
        (prefix,),
    ).fetchall()
    rows += conn.execute("SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace").fetchall()
    rows += conn.execute("SELECT objoid::regclass::text, description FROM pg_description").fetchall()
    rows += conn.execute(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = ANY(%s)",
        (list(databases),),
    ).fetchall()
    rows += conn.execute(
        "SELECT usename, application_name FROM pg_stat_activity WHERE starts_with(usename, %s)", (prefix,)
    ).fetchall()
    return "\n".join(" ".join(str(v) for v in row if v is not None) for row in rows)


def test_nothing_a_member_reads_names_users_or_spaces(world):
    # two spaces with active members, the way a busy server looks
    for user in ("alice", "bob", "carol", "pat"):
        world.activate(world.retail, user)
    eve = world.activate(world.weather, "eve")
    databases = (make_url(world.store.url).database, make_url(world.data_url).database)
    with world.connect(eve, "collaborative") as conn:
        seen = _visible_text(conn, world.dbs.prefix, databases)
    assert world.dbs.prefix in seen  # the query does see this hub's roles
    named = [word for word in OTHERS if re.search(rf"(?<![a-zA-Z]){word}(?![a-zA-Z])", seen)]
    assert named == [], seen
    # every login name is opaque, and nobody's login names its user
    logins = [i.login for i in world.dbs.issued()]
    assert len(logins) == 5 and all(login.startswith(world.dbs.prefix + "l_") for login in logins)


def test_the_registry_is_the_administrators_alone(world):
    bob = world.activate(world.retail, "bob")
    with world.connect(bob, "collaborative") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f'SELECT * FROM "{world.dbs.registry}".logins')


def test_a_demoted_members_login_and_open_connection_end_at_reconcile(world):
    creds = world.activate(world.retail, "bob")  # an editor
    open_conn = world.connect(creds, "collaborative")
    open_conn.execute("CREATE TABLE notes (n int)")
    with world.store.transaction() as db:
        db.execute(
            update(orm.Collaborator)
            .where(orm.Collaborator.space_id == world.retail, orm.Collaborator.user_id == world.ids["user:bob"])
            .values(role="viewer")
        )
    revoked = reconcile(world.store, world.dbs, space_id=world.retail, user="bob")
    assert [(r.user, r.role) for r in revoked] == [("bob", "editor")]
    with pytest.raises(psycopg.OperationalError):
        open_conn.execute("INSERT INTO notes VALUES (1)")
    with pytest.raises(psycopg.OperationalError):
        world.connect(creds, "collaborative")
    # the new activation is a viewer's
    viewer = world.activate(world.retail, "bob")
    with world.connect(viewer, "collaborative") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO notes VALUES (2)")


def test_a_promotion_keeps_the_running_login(world):
    creds = world.activate(world.retail, "carol")  # a viewer
    with world.store.transaction() as db:
        db.execute(
            update(orm.Collaborator)
            .where(orm.Collaborator.space_id == world.retail, orm.Collaborator.user_id == world.ids["user:carol"])
            .values(role="editor")
        )
    assert reconcile(world.store, world.dbs, space_id=world.retail) == []
    with world.connect(creds, "asset") as conn:
        assert conn.execute("SELECT count(*) FROM sales").fetchone() == (2,)


def test_removed_members_are_not_listed_after_revoke(world):
    world.activate(world.retail, "carol")
    with world.store.transaction() as db:
        db.execute(
            delete(orm.Collaborator).where(
                orm.Collaborator.space_id == world.retail, orm.Collaborator.user_id == world.ids["user:carol"]
            )
        )
    reconcile(world.store, world.dbs)
    assert [i.user for i in world.dbs.issued()] == []
