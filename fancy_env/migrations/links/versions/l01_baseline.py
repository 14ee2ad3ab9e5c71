"""Baseline: the environment links table of the first release (fancy_env_links).

Revision ID: l01_baseline
Revises:
"""

import sqlalchemy as sa
from alembic import op

from fancy_env.migrate import has_table

revision = "l01_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    if has_table(op, "fancy_env_links"):  # made before migrations (adoption stamps here)
        return
    op.create_table(
        "fancy_env_links",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("launches", sa.Integer(), nullable=False),
        sa.Column("last_launch", sa.Float(), nullable=True),
    )
    op.create_index("ix_fancy_env_links_owner", "fancy_env_links", ["owner"])
    op.create_index("ix_fancy_env_links_created", "fancy_env_links", ["created"])
    op.create_index("ix_fancy_env_links_owner_created", "fancy_env_links", ["owner", "created"])


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
