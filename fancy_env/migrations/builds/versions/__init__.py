"""Revisions of the builds schema, oldest first (see fancy_env.migrate)."""
