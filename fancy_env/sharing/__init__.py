"""Sharing by link: environment links (pinned to a commit, launched with the recipient's own
permissions) and a page over JupyterHub's server share codes. See docs/sharing.md.

Parts: `links` (pure rules), `store` (SQLAlchemy table), `base` (the sharing handlers' base on
the service's one base handler), `handlers`/`pages`/`shares`/`credpages`/`binder_pages`
(tornado), `routes` (what each handler receives), `launch` (build through the builds layer's
`Builds` interface, then start through the hub API), `hubsetup.enable_sharing`
(jupyterhub_config.py). The service assembly (`fancy_env.service`) mounts the routes.
"""
