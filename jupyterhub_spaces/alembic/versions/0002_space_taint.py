"""space taint: every product and asset ever part of a space until its data is purged

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

The database keeps the taint itself: a trigger on ``space_products`` and one on
``space_assets`` add a row whenever a space gains a product or an asset, whatever
code inserts it. Existing spaces start with their current spec as their taint (what
was removed before this revision cannot be known).
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

#: (table the spec lives in, its column, the taint column)
SOURCES = (('space_products', 'product_id'), ('space_assets', 'asset_id'))


def _create_triggers() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table, column in SOURCES:
            op.execute(f"""
                CREATE FUNCTION {table}_taint() RETURNS trigger LANGUAGE plpgsql
                SET search_path FROM CURRENT AS $$
                BEGIN
                    INSERT INTO space_taint (space_id, {column}, added_at)
                    VALUES (NEW.space_id, NEW.{column}, timezone('utc', now()))
                    ON CONFLICT DO NOTHING;
                    RETURN NULL;
                END $$""")
            op.execute(f"""
                CREATE TRIGGER {table}_taint AFTER INSERT OR UPDATE ON {table}
                FOR EACH ROW EXECUTE FUNCTION {table}_taint()""")
        return
    for table, column in SOURCES:
        for event in ('INSERT', 'UPDATE'):
            op.execute(f"""
                CREATE TRIGGER {table}_taint_{event.lower()} AFTER {event} ON {table}
                BEGIN
                    INSERT OR IGNORE INTO space_taint (space_id, {column}, added_at)
                    VALUES (NEW.space_id, NEW.{column}, strftime('%Y-%m-%d %H:%M:%S', 'now'));
                END""")


def _drop_triggers() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table, _ in SOURCES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_taint ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_taint()")
        return
    for table, _ in SOURCES:
        for event in ('insert', 'update'):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_taint_{event}")


def upgrade() -> None:
    op.create_table('space_taint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('asset_id', sa.Integer(), nullable=True),
    sa.Column('added_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('(product_id IS NULL) <> (asset_id IS NULL)', name='taint_one_source'),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], ),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], ),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('space_id', 'asset_id', name='taint_once_per_asset'),
    sa.UniqueConstraint('space_id', 'product_id', name='taint_once_per_product')
    )
    with op.batch_alter_table('space_taint', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_space_taint_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_space_taint_product_id'), ['product_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_space_taint_space_id'), ['space_id'], unique=False)

    # what each space holds now is its taint from here on
    now = (sa.func.timezone('utc', sa.func.now()) if op.get_bind().dialect.name == 'postgresql'
           else sa.func.datetime('now'))
    for table, column in SOURCES:
        spec = sa.table(table, sa.column('space_id'), sa.column(column))
        taint = sa.table('space_taint', sa.column('space_id'), sa.column(column), sa.column('added_at'))
        op.execute(taint.insert().from_select(
            ['space_id', column, 'added_at'], sa.select(spec.c.space_id, spec.c[column], now)
        ))
    _create_triggers()


def downgrade() -> None:
    _drop_triggers()
    with op.batch_alter_table('space_taint', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_space_taint_space_id'))
        batch_op.drop_index(batch_op.f('ix_space_taint_product_id'))
        batch_op.drop_index(batch_op.f('ix_space_taint_asset_id'))

    op.drop_table('space_taint')
