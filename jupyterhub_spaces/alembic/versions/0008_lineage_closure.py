"""lineage closure: what each derived asset was made from, at any depth

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Published lineage never changes, so everything a derived asset was made from (the
products and assets its edges reach, directly or through other derived assets) is
written once, beside its edges, instead of walked on every access decision. This
revision creates ``asset_lineage_closure`` and fills it for the derived assets that
exist, by one recursive walk over ``lineage_edges`` in the database.
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _fill() -> None:
    edges = sa.table(
        'lineage_edges',
        sa.column('asset_id', sa.Integer), sa.column('source_asset_id', sa.Integer),
        sa.column('source_product_id', sa.Integer),
    )
    assets = sa.table('assets', sa.column('id', sa.Integer), sa.column('derived', sa.Boolean))
    closure = sa.table(
        'asset_lineage_closure',
        sa.column('asset_id', sa.Integer), sa.column('source_asset_id', sa.Integer),
        sa.column('source_product_id', sa.Integer), sa.column('leaf', sa.Boolean),
    )
    walk = sa.select(
        edges.c.asset_id.label('root'), edges.c.source_asset_id, edges.c.source_product_id
    ).cte('walk', recursive=True)
    deeper = edges.alias('deeper')
    # UNION, not UNION ALL: each (root, source) once, however many paths reach it
    walk = walk.union(
        sa.select(walk.c.root, deeper.c.source_asset_id, deeper.c.source_product_id).where(
            deeper.c.asset_id == walk.c.source_asset_id
        )
    )
    source = assets.alias('source')
    has_lineage = sa.exists().where(edges.c.asset_id == walk.c.source_asset_id)
    # what ends a path: a product, a primary asset, a derived asset without lineage
    leaf = sa.case(
        (walk.c.source_product_id.is_not(None), sa.true()),
        (sa.not_(source.c.derived), sa.true()),
        (sa.not_(has_lineage), sa.true()),
        else_=sa.false(),
    )
    rows = sa.select(walk.c.root, walk.c.source_asset_id, walk.c.source_product_id, leaf).select_from(
        walk.outerjoin(source, source.c.id == walk.c.source_asset_id)
    )
    op.execute(
        closure.insert().from_select(
            ['asset_id', 'source_asset_id', 'source_product_id', 'leaf'], rows
        )
    )


def upgrade() -> None:
    op.create_table('asset_lineage_closure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('source_asset_id', sa.Integer(), nullable=True),
    sa.Column('source_product_id', sa.Integer(), nullable=True),
    sa.Column('leaf', sa.Boolean(), nullable=False),
    sa.CheckConstraint('(source_asset_id IS NULL) <> (source_product_id IS NULL)', name='closure_one_source'),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_asset_id'], ['assets.id'], ),
    sa.ForeignKeyConstraint(['source_product_id'], ['products.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('asset_id', 'source_asset_id', name='closure_asset_once'),
    sa.UniqueConstraint('asset_id', 'source_product_id', name='closure_product_once')
    )
    with op.batch_alter_table('asset_lineage_closure', schema=None) as batch_op:
        batch_op.create_index('ix_closure_source_asset', ['source_asset_id'], unique=False)
        batch_op.create_index('ix_closure_source_product', ['source_product_id'], unique=False)
    _fill()


def downgrade() -> None:
    with op.batch_alter_table('asset_lineage_closure', schema=None) as batch_op:
        batch_op.drop_index('ix_closure_source_product')
        batch_op.drop_index('ix_closure_source_asset')
    op.drop_table('asset_lineage_closure')
