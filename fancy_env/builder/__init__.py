"""The fancy_env build service: repo2docker builds as a JupyterHub service."""
