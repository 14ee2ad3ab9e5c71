"""The builds schema's Alembic script directory (env.py, versions/); see fancy_env.migrate."""
