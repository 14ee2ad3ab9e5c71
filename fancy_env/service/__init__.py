"""The fancy_env service: the one tornado app, assembled here from the builds layer
(`fancy_env.builder`) and the sharing layer (`fancy_env.sharing`). Run by JupyterHub as the
managed service `fancy-env` (`python -m fancy_env.service`, see `fancy_env.setup(c)`)."""
