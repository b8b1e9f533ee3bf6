"""code assets, their versions and blobs; tasks and their runs

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('code_blobs',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('sha256')
    )
    op.create_table('code_assets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind in ('notebook', 'script', 'folder')", name='code_asset_kind'),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('space_id', 'name', name='code_asset_name_in_space')
    )
    op.create_index('ix_code_assets_space_id', 'code_assets', ['space_id'])
    op.create_table('code_asset_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_asset_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('manifest', sa.JSON(), nullable=False),
    sa.Column('entry', sa.Text(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('author', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('source_space_id', sa.Integer(), nullable=True),
    sa.Column('lineage', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['code_asset_id'], ['code_assets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code_asset_id', 'number', name='one_version_number')
    )
    op.create_index('ix_code_asset_versions_code_asset_id', 'code_asset_versions', ['code_asset_id'])
    op.create_index('ix_code_asset_versions_hash', 'code_asset_versions', ['hash'])
    op.create_table('tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('schedule', sa.String(length=100), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('profile', sa.String(length=100), nullable=False),
    sa.Column('timeout_seconds', sa.Integer(), nullable=False),
    sa.Column('retries', sa.Integer(), nullable=False),
    sa.Column('publish', sa.JSON(), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('paused_reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id']),
    sa.ForeignKeyConstraint(['version_id'], ['code_asset_versions.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('space_id', 'name', name='task_name_in_space')
    )
    op.create_index('ix_tasks_space_id', 'tasks', ['space_id'])
    op.create_index('ix_tasks_owner_id', 'tasks', ['owner_id'])
    op.create_index('ix_tasks_version_id', 'tasks', ['version_id'])
    op.create_table('task_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('engine_run_id', sa.String(length=250), nullable=False),
    sa.Column('try_number', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('log', sa.Text(), nullable=False),
    sa.Column('published', sa.JSON(), nullable=False),
    sa.CheckConstraint("state in ('running', 'success', 'failed', 'refused', 'cancelled')", name='task_run_state'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_task_runs_task_id', 'task_runs', ['task_id'])


def downgrade() -> None:
    op.drop_index('ix_task_runs_task_id', table_name='task_runs')
    op.drop_table('task_runs')
    op.drop_index('ix_tasks_version_id', table_name='tasks')
    op.drop_index('ix_tasks_owner_id', table_name='tasks')
    op.drop_index('ix_tasks_space_id', table_name='tasks')
    op.drop_table('tasks')
    op.drop_index('ix_code_asset_versions_hash', table_name='code_asset_versions')
    op.drop_index('ix_code_asset_versions_code_asset_id', table_name='code_asset_versions')
    op.drop_table('code_asset_versions')
    op.drop_index('ix_code_assets_space_id', table_name='code_assets')
    op.drop_table('code_assets')
    op.drop_table('code_blobs')
