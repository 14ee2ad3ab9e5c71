"""Alembic script directories, one per schema (`builds`, `links`); run by fancy_env.migrate."""
