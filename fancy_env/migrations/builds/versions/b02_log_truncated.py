"""builds.log_truncated: the stored log reached max_log_bytes / max_log_lines and was cut.

Revision ID: b02_log_truncated
Revises: b01_baseline
"""

import sqlalchemy as sa
from alembic import op

from fancy_env.migrate import has_column

revision = "b02_log_truncated"
down_revision = "b01_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if not has_column(op, "builds", "log_truncated"):
        op.add_column(
            "builds",
            sa.Column("log_truncated", sa.Boolean(), nullable=False, server_default=sa.false()),
        )


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
