"""runs of YAML DAG steps, and each run's own credential

A YAML DAG's step runs like a Task's run (its own database login, revoked at its end,
which the reconciler finds by the run's id), so it is a ``task_runs`` row too, with no
task: ``task_id`` becomes nullable and the row names its space, owner, DAG and step.
``token_hash`` keeps the SHA-256 of the credential a run uses to read its own space's
connections and variables from the service (the secrets backend). Downgrading deletes
the step runs (they have no task).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_runs") as batch:
        batch.alter_column("task_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("space_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("dag_id", sa.String(length=250), nullable=False, server_default=""))
        batch.add_column(sa.Column("step", sa.String(length=100), nullable=False, server_default=""))
        batch.add_column(sa.Column("token_hash", sa.String(length=64), nullable=False, server_default=""))
        batch.create_foreign_key("fk_task_runs_space_id", "spaces", ["space_id"], ["id"], ondelete="CASCADE")
        batch.create_foreign_key("fk_task_runs_owner_id", "users", ["owner_id"], ["id"])
        batch.create_index("ix_task_runs_space_id", ["space_id"])


def downgrade() -> None:
    op.execute("DELETE FROM task_runs WHERE task_id IS NULL")
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_index("ix_task_runs_space_id")
        batch.drop_constraint("fk_task_runs_owner_id", type_="foreignkey")
        batch.drop_constraint("fk_task_runs_space_id", type_="foreignkey")
        for column in ("token_hash", "step", "dag_id", "owner_id", "space_id"):
            batch.drop_column(column)
        batch.alter_column("task_id", existing_type=sa.Integer(), nullable=False)
