"""Alembic environment: migrate on the connection fancy_env.migrate.upgrade passes in."""

from alembic import context

from fancy_env.migrate import run_env

run_env(context)
