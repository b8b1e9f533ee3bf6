"""A hostile member publishes what they defined in the Publish schema, on a real
PostgreSQL: no object of theirs runs with more rights than their own, and nothing
they may not read leaves through a publish under another name.

Every function below tries to do what only the administrator may: take a number from
a sequence members have no grant on (sequences are not transactional, so the mark
stays even when the publish rolls back), after ``RESET ROLE`` back to whoever the
connection logged in as, and run a program on the database server with ``COPY ...
FROM PROGRAM``.
"""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import func, select

from jupyterhub_spaces import orm
from jupyterhub_spaces.databases.publish import PublishError, publish
from jupyterhub_spaces.store import space_query

PREFIX = "spaces_derived_"

#: as the administrator: a source table no asset names, in the schema every role can
#: use, and the sequences only the administrator may advance
PAYROLL = """
CREATE TABLE public.payroll (name text, salary int);
INSERT INTO public.payroll VALUES ('ceo', 999999), ('cfo', 888888);
CREATE SEQUENCE public.escalations;
CREATE SEQUENCE public.program_runs;
"""

#: as the member, in the Publish schema: code that tries to act as the administrator
EVIL = """
CREATE FUNCTION escalate() RETURNS boolean LANGUAGE plpgsql SET search_path FROM CURRENT AS $f$
BEGIN
    BEGIN
        PERFORM nextval('public.escalations');
    EXCEPTION WHEN others THEN NULL;
    END;
    BEGIN
        EXECUTE 'RESET ROLE';
        PERFORM nextval('public.escalations');
    EXCEPTION WHEN others THEN NULL;
    END;
    BEGIN
        EXECUTE 'RESET ROLE';
        CREATE TEMP TABLE IF NOT EXISTS program_output (line text);
        EXECUTE $q$COPY program_output FROM PROGRAM 'echo program-ran'$q$;
        PERFORM nextval('public.program_runs');
    EXCEPTION WHEN others THEN NULL;
    END;
    RETURN true;
END $f$;
CREATE FUNCTION evil_rows() RETURNS TABLE (name text, salary int) LANGUAGE plpgsql SET search_path FROM CURRENT AS $f$
BEGIN
    PERFORM escalate();
    RETURN QUERY SELECT 'fake'::text, 1;
END $f$;
CREATE FUNCTION evil_int() RETURNS int LANGUAGE plpgsql SET search_path FROM CURRENT AS $f$
BEGIN
    PERFORM escalate();
    RETURN 1;
END $f$;
CREATE FUNCTION evil_trigger() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $f$
BEGIN
    PERFORM escalate();
    RETURN NEW;
END $f$;
"""

# (what the member creates, the table they ask to publish, the answer's status, the
# words the refusal uses)
REFUSED = {
    "view over a source table": (
        # security_invoker: the reader's rights decide what the view reads
        "CREATE VIEW report WITH (security_invoker = true) AS SELECT * FROM public.payroll",
        "report", 422, "is a view"),
    "view named like the space's asset": (
        "CREATE VIEW sales WITH (security_invoker = true) AS SELECT * FROM public.payroll",
        "sales", 422, "is a view"),
    "view over a PL/pgSQL function": (
        "CREATE VIEW forecast AS SELECT * FROM evil_rows()", "forecast", 422, "is a view"),
    "materialized view": (
        "CREATE MATERIALIZED VIEW snapshot AS SELECT 'x'::text AS name, 1 AS salary",
        "snapshot", 422, "is a materialized view"),
    "table turned into a view by an ON SELECT rule, over a function": (
        "CREATE TABLE ruled (name text, salary int);"
        ' CREATE RULE "_RETURN" AS ON SELECT TO ruled DO INSTEAD SELECT * FROM evil_rows()',
        "ruled", 422, "is a view"),
    "table that reads a source table it has no grant on through an ON SELECT rule": (
        "CREATE TABLE payroll_copy (name text, salary int);"
        ' CREATE RULE "_RETURN" AS ON SELECT TO payroll_copy DO INSTEAD SELECT * FROM public.payroll;'
        " ALTER VIEW payroll_copy SET (security_invoker = true)",
        "payroll_copy", 422, "is a view"),
    "table with an INSERT rule calling a function": (
        "CREATE TABLE logged (name text, salary int);"
        " CREATE RULE audit AS ON INSERT TO logged DO ALSO SELECT escalate()",
        "logged", 422, "table with rules"),
    "table with a row-level security policy calling a function": (
        "CREATE TABLE guarded (name text, salary int); INSERT INTO guarded VALUES ('g', 1);"
        " ALTER TABLE guarded ENABLE ROW LEVEL SECURITY; ALTER TABLE guarded FORCE ROW LEVEL SECURITY;"
        " CREATE POLICY p ON guarded USING (escalate())",
        "guarded", 422, "row-level security"),
    "partitioned table with a view-like part": (
        "CREATE TABLE parts (name text, salary int) PARTITION BY LIST (name);"
        " CREATE TABLE parts_a PARTITION OF parts FOR VALUES IN ('a');"
        " ALTER TABLE parts_a ENABLE ROW LEVEL SECURITY",
        "parts", 422, "row-level security"),
}

# plain tables: published as their rows, whatever code hangs on them for writes
ACCEPTED = {
    "table with a trigger calling a function": (
        "CREATE TABLE triggered (name text, salary int);"
        " INSERT INTO triggered VALUES ('t', 2);"
        " CREATE TRIGGER t BEFORE INSERT OR UPDATE ON triggered FOR EACH ROW EXECUTE FUNCTION evil_trigger()",
        "triggered", [("t", 2)]),
    "table with a default calling a function": (
        "CREATE TABLE defaulted (name text, salary int DEFAULT evil_int());"
        " INSERT INTO defaulted VALUES ('d', 3)",
        "defaulted", [("d", 3)]),
    "table named like a source table": (
        "CREATE TABLE payroll (name text, salary int); INSERT INTO payroll VALUES ('mine', 4)",
        "payroll", [("mine", 4)]),
}


def admin(world):
    return psycopg.connect(world.data_url.replace("+psycopg", ""), autocommit=True)


@pytest.fixture
def hostile(world):
    """alice (owner of space retail) has defined the functions above in its Publish
    schema; the data database has a payroll table no asset names."""
    with admin(world) as conn:
        conn.execute(PAYROLL)
    creds = world.activate(world.retail, "alice")
    with world.connect(creds, "publish") as conn:
        conn.execute(EVIL)
    world.creds = creds
    return world


def try_publish(world, table, name="Quarterly"):
    with world.store.transaction() as db:
        space = db.scalar(space_query().where(orm.Space.id == world.retail))
        alice = db.scalar(select(orm.User).where(orm.User.name == "alice"))
        asset = publish(db, world.dbs, space, alice, "owner", table, name, "", PREFIX)
        return asset.location


def assert_no_escalation(world):
    with admin(world) as conn:
        escalated = conn.execute("SELECT is_called FROM public.escalations").fetchone()[0]
        program = conn.execute("SELECT is_called FROM public.program_runs").fetchone()[0]
    assert not escalated, "member code ran with the administrator's rights"
    assert not program, "member code ran a program on the database server"


def snapshot_rows(world, location):
    with admin(world) as conn:
        return conn.execute(f'SELECT name, salary FROM sources."{location}" ORDER BY name').fetchall()


def derived_count(world):
    with world.store.transaction() as db:
        return db.scalar(select(func.count()).select_from(orm.Asset).where(orm.Asset.derived))


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_member_defined_objects_are_refused_and_never_run(hostile, case):
    world = hostile
    sql, table, status, words = REFUSED[case]
    with world.connect(world.creds, "publish") as conn:
        conn.execute(sql)
    try:
        published, refusal = try_publish(world, table), None
    except PublishError as e:
        published, refusal = None, e
    # the worst outcome first: code of the member's ran as the administrator
    assert_no_escalation(world)
    assert published is None, f"published as {snapshot_rows(world, published)}"
    assert refusal.status == status
    assert words in refusal.message and "CREATE TABLE" in refusal.message
    assert derived_count(world) == 0


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_plain_tables_publish_their_rows_only(hostile, case):
    world = hostile
    sql, table, rows = ACCEPTED[case]
    with world.connect(world.creds, "publish") as conn:
        conn.execute(sql)
    location = try_publish(world, table)
    assert snapshot_rows(world, location) == rows
    assert_no_escalation(world)


def test_the_reader_cannot_become_the_administrator(hostile):
    """Even if member code ran on the reader's connection, resetting its role leaves a
    login with no rights of its own, in a transaction that cannot write."""
    world = hostile
    with world.dbs.publish_reader(world.retail, "owner") as (conn, schema):
        assert conn.exec_driver_sql("SELECT current_user").scalar() == world.dbs.group(world.retail, "owner")
        conn.exec_driver_sql("RESET ROLE")
        me, superuser = conn.exec_driver_sql(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").one()
        assert me != "postgres" and not superuser
        for attempt in ("CREATE TABLE public.pwned (who text)",
                        "SELECT nextval('public.escalations')",
                        "COPY (SELECT 1) TO PROGRAM 'true'",
                        "SELECT * FROM public.payroll"):
            with pytest.raises(Exception, match="read-only|permission denied|must be superuser"):
                with conn.begin_nested():
                    conn.exec_driver_sql(attempt)
    # the reader's login is gone afterwards
    with admin(world) as c:
        left = c.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s",
                         (f"{world.dbs.prefix}s{world.retail}_r_%",)).fetchall()
    assert left == []
    assert_no_escalation(world)


def test_a_reader_left_behind_is_dropped_by_the_next_publish(hostile):
    """A service killed mid-publish leaves its reader login; it has long expired when
    the next publish of the space sweeps it."""
    world = hostile
    stale = f"{world.dbs.prefix}s{world.retail}_r_deadbeef"
    with admin(world) as conn:
        conn.execute(f"CREATE ROLE \"{stale}\" LOGIN VALID UNTIL '2000-01-01'")
    with world.connect(world.creds, "publish") as conn:
        conn.execute("CREATE TABLE plain (a int)")
    try_publish(world, "plain")
    with admin(world) as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (stale,)).fetchone() is None
