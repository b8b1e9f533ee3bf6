"""ids are never reused: AUTOINCREMENT on SQLite for the tables whose ids the API shows

SQLite gives a new row the largest id + 1, so after the newest space (or asset,
product, subscription, audit event) is deleted its id went to the next one: a client
holding the old id reached the new row, and per-space resources keyed by the id (the
space databases) belonged to the deleted space. With AUTOINCREMENT SQLite never hands
out an id again. PostgreSQL's sequences never did: nothing changes there.

SQLite cannot add AUTOINCREMENT to a table, so each table is recreated (alembic batch
mode copies rows, indexes and constraints). The store runs migrations with foreign
key enforcement off, so dropping the old table does not cascade to its children.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: the tables whose ids appear in the API or key resources outside the catalog
TABLES = ("spaces", "assets", "products", "subscriptions", "audit_events")


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TABLES:
        with op.batch_alter_table(
            name, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
