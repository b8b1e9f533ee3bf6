"""reserved for the parallel revision 0002 (no change)

Another branch adds the real revision 0002; this empty one only keeps the history a
straight line on this branch until the two meet. Drop this file when merging that
branch (two files declaring revision 0002 make alembic refuse to load the history).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
