"""Revisions of the links schema, oldest first (see fancy_env.migrate)."""
