"""builds.rebuild, builds.rebuild_of: a forced build without the layer cache, and the build
it replaces.

Revision ID: b03_rebuild
Revises: b02_log_truncated
"""

import sqlalchemy as sa
from alembic import op

from fancy_env.migrate import has_column

revision = "b03_rebuild"
down_revision = "b02_log_truncated"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if not has_column(op, "builds", "rebuild"):
        op.add_column(
            "builds", sa.Column("rebuild", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    if not has_column(op, "builds", "rebuild_of"):
        op.add_column(
            "builds", sa.Column("rebuild_of", sa.String(32), nullable=False, server_default="")
        )


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
