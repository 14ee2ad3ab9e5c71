"""builds.digest: what a launch pins (the registry manifest digest, or the engine's image ID).

Revision ID: b04_digest
Revises: b03_rebuild
"""

import sqlalchemy as sa
from alembic import op

from fancy_env.migrate import has_column

revision = "b04_digest"
down_revision = "b03_rebuild"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if not has_column(op, "builds", "digest"):
        op.add_column(
            "builds", sa.Column("digest", sa.String(128), nullable=False, server_default="")
        )


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
