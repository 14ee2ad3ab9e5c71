"""builds.private (only the requester's own forge credential opened the repository) and the
forge_credentials table (users' encrypted forge tokens).

Revision ID: b05_private
Revises: b04_digest
"""

import sqlalchemy as sa
from alembic import op

from fancy_env.migrate import has_column, has_table

revision = "b05_private"
down_revision = "b04_digest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if not has_column(op, "builds", "private"):
        op.add_column(
            "builds", sa.Column("private", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    if not has_table(op, "forge_credentials"):
        op.create_table(
            "forge_credentials",
            sa.Column("user", sa.String(255), primary_key=True),
            sa.Column("origin", sa.String(320), primary_key=True),
            sa.Column("secret", sa.Text(), nullable=False),
            sa.Column("created", sa.Float(), nullable=False),
        )


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
