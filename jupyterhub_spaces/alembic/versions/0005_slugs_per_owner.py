"""slugs are unique per owner, not across the hub

A space's JupyterHub server name is now ``space-<id>`` (ids are never reused, revision
0003), so its slug is only its short name. A slug unique across the hub told whoever
created a space that some space, possibly of another organization, had taken it. Now
two owners may each have a space of the same slug; one owner may not have two.

The unique constraint on ``slug`` was created unnamed: PostgreSQL named it, SQLite
did not, so SQLite's is named by a naming convention for batch mode to drop it.
Downgrading fails while two spaces share a slug: rename one first.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: how batch mode names SQLite's unnamed unique constraints it reflects
CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
PER_OWNER = "one_slug_per_owner"


def _batch():
    return op.batch_alter_table(
        "spaces", naming_convention=CONVENTION, table_kwargs={"sqlite_autoincrement": True}
    )


def _slug_unique_name() -> str:
    for uc in sa.inspect(op.get_bind()).get_unique_constraints("spaces"):
        if uc["column_names"] == ["slug"] and uc.get("name"):
            return uc["name"]
    return "uq_spaces_slug"


def upgrade() -> None:
    name = _slug_unique_name()
    with _batch() as batch:
        batch.drop_constraint(name, type_="unique")
        batch.create_unique_constraint(PER_OWNER, ["owner_id", "slug"])


def downgrade() -> None:
    with _batch() as batch:
        batch.drop_constraint(PER_OWNER, type_="unique")
        batch.create_unique_constraint("uq_spaces_slug", ["slug"])
