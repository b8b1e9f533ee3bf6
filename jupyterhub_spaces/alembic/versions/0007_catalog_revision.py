"""catalog revision: one number that every committed catalog write raises

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

The service keeps answers (my spaces, a space's access) in memory and serves them
again only while the catalog is unchanged. "Unchanged" must hold across every
process of the service and every writer (handlers, the guard, the command line, a
site's own SQL), so the database keeps it: triggers on each table an answer is built
from raise ``catalog_revision.value`` in the writing transaction, whatever code
writes. A reader reads the revision first, then the data; an answer is reused only
under the revision it was built at.

On PostgreSQL the raise is a deferred constraint trigger that runs once per
transaction at commit: the row lock it takes is held only from there to the end of
the commit, so concurrent writers queue briefly on it and never deadlock through it
(they take no other lock after it). SQLite runs one writer at a time and raises it
per written row. The one row cannot be deleted: a revision that started again from
a lower number could bring old answers back (it starts at the time of the upgrade
in microseconds, for the same reason).
"""

import time

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

#: every table a cached answer is built from (see jupyterhub_spaces.service.answers)
TABLES = (
    'users', 'products', 'assets', 'lineage_edges', 'subscriptions', 'spaces',
    'space_products', 'space_assets', 'space_taint', 'collaborators',
)


def _create_triggers() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("""
            CREATE FUNCTION catalog_revision_bump() RETURNS trigger LANGUAGE plpgsql
            SET search_path FROM CURRENT AS $$
            BEGIN
                -- once per transaction: the first deferred run raises it, the others see the flag
                IF coalesce(current_setting('jupyterhub_spaces.revision_raised', true), '') <> 'yes' THEN
                    UPDATE catalog_revision SET value = value + 1 WHERE id = 1;
                    PERFORM set_config('jupyterhub_spaces.revision_raised', 'yes', true);
                END IF;
                RETURN NULL;
            END $$""")
        op.execute("""
            CREATE FUNCTION catalog_revision_truncated() RETURNS trigger LANGUAGE plpgsql
            SET search_path FROM CURRENT AS $$
            BEGIN
                UPDATE catalog_revision SET value = value + 1 WHERE id = 1;
                RETURN NULL;
            END $$""")
        op.execute("""
            CREATE FUNCTION catalog_revision_kept() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'the catalog revision row is never deleted: answers cached '
                    'under an old revision would come back';
            END $$""")
        for table in TABLES:
            op.execute(f"""
                CREATE CONSTRAINT TRIGGER {table}_revision AFTER INSERT OR UPDATE OR DELETE ON {table}
                DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION catalog_revision_bump()""")
            op.execute(f"""
                CREATE TRIGGER {table}_revision_truncate AFTER TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION catalog_revision_truncated()""")
        op.execute("""
            CREATE TRIGGER catalog_revision_kept BEFORE DELETE OR TRUNCATE ON catalog_revision
            FOR EACH STATEMENT EXECUTE FUNCTION catalog_revision_kept()""")
        return
    for table in TABLES:
        for event in ('INSERT', 'UPDATE', 'DELETE'):
            op.execute(f"""
                CREATE TRIGGER {table}_revision_{event.lower()} AFTER {event} ON {table}
                BEGIN
                    UPDATE catalog_revision SET value = value + 1 WHERE id = 1;
                END""")
    op.execute("""
        CREATE TRIGGER catalog_revision_kept BEFORE DELETE ON catalog_revision
        BEGIN
            SELECT RAISE(ABORT, 'the catalog revision row is never deleted: answers cached under an old revision would come back');
        END""")


def _drop_triggers() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS catalog_revision_kept ON catalog_revision")
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_revision ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_revision_truncate ON {table}")
        for function in ('catalog_revision_bump', 'catalog_revision_truncated', 'catalog_revision_kept'):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
        return
    op.execute("DROP TRIGGER IF EXISTS catalog_revision_kept")
    for table in TABLES:
        for event in ('insert', 'update', 'delete'):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_revision_{event}")


def upgrade() -> None:
    table = op.create_table('catalog_revision',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('id = 1', name='one_revision_row'),
    sa.PrimaryKeyConstraint('id')
    )
    # start above any value an earlier life of this table reached (a downgrade and
    # upgrade must not bring back numbers a running service kept answers under)
    op.bulk_insert(table, [{'id': 1, 'value': time.time_ns() // 1000}])
    _create_triggers()


def downgrade() -> None:
    _drop_triggers()
    op.drop_table('catalog_revision')
