"""Baseline: the build tables of the first release (builds, build_users, log_lines, images).

Revision ID: b01_baseline
Revises:
"""

import sqlalchemy as sa
from alembic import op

from fancy_env.migrate import has_table

revision = "b01_baseline"
down_revision = None
branch_labels = None
depends_on = None

INDEXED = ("user", "repo", "image", "status", "created")


def _builds() -> None:
    op.create_table(
        "builds",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("repo", sa.String(2048), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("subdir", sa.String(1024), nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("image", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.Column("executor_ref", sa.String(255), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("started", sa.Float(), nullable=True),
        sa.Column("finished", sa.Float(), nullable=True),
    )
    for column in INDEXED:
        op.create_index(f"ix_builds_{column}", "builds", [column])


def upgrade() -> None:
    # tables a database made before migrations lacks (adoption stamps here when it has all)
    if not has_table(op, "builds"):
        _builds()
    if not has_table(op, "build_users"):
        op.create_table(
            "build_users",
            sa.Column("build_id", sa.String(32), sa.ForeignKey("builds.id"), primary_key=True),
            sa.Column("user", sa.String(255), primary_key=True),
        )
    if not has_table(op, "log_lines"):
        op.create_table(
            "log_lines",
            sa.Column("build_id", sa.String(32), sa.ForeignKey("builds.id"), primary_key=True),
            sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
            sa.Column("phase", sa.String(16), nullable=False),
            sa.Column("message", sa.Text(), nullable=False),
            sa.Column("time", sa.Float(), nullable=False),
            sa.Column("image", sa.String(512), nullable=True),
        )
    if not has_table(op, "images"):
        op.create_table(
            "images",
            sa.Column("name", sa.String(512), primary_key=True),
            sa.Column("repo", sa.String(2048), nullable=False),
            sa.Column("commit", sa.String(64), nullable=False),
            sa.Column("build_id", sa.String(32), nullable=False),
            sa.Column("created", sa.Float(), nullable=False),
        )


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
