"""Sharing by link: environment links (pinned to a commit, launched with the recipient's own
permissions) and a page over JupyterHub's server share codes. See docs/sharing.md.

Parts: `links` (pure rules), `store` (SQLAlchemy table), `handlers`/`pages`/`shares` (tornado,
mounted in the build service by `mount.mount_sharing`), `launch` (build, then start through the
hub API), `hubsetup.enable_sharing` (jupyterhub_config.py), `app` (standalone service).
"""
