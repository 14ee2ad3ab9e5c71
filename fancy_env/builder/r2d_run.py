"""`python -m fancy_env.builder.r2d_run ARGS`: repo2docker with our defaults.

The same command line as `repo2docker`, plus:
- the `docker-api` engine is found even when this package is not installed as a
  distribution (entry points come from installed metadata),
- the only content provider is Local: the service fetches the repository itself
  (`fancy_env.builder.checkout`: policy-checked, address-pinned, no redirects, confined
  links) and hands repo2docker the local directory. repo2docker never clones, and its
  default list (which probes the internet, e.g. Dataverse) is never asked.
- `--no-cache` (a rebuild): the image is built even when the engine already has one under
  that name (repo2docker would reuse it), and no step comes from the layer cache. The
  engine moves the name to the new image only when the build succeeds.
"""

from __future__ import annotations

import sys
from typing import Any


def main(argv: list[str] | None = None) -> int:
    from repo2docker import contentproviders
    from repo2docker.__main__ import make_r2d
    from repo2docker.app import Repo2Docker
    from repo2docker.engine import BuildError, ImageLoadError

    from .r2d_engine import DockerAPIEngine

    original = Repo2Docker.get_engine

    args = list(sys.argv[1:] if argv is None else argv)
    no_cache = "--no-cache" in args
    args = [a for a in args if a != "--no-cache"]

    def get_engine(self: Any) -> Any:
        if self.engine == "docker-api":
            return DockerAPIEngine(parent=self)
        engine = original(self)
        if no_cache and hasattr(engine, "extra_buildx_build_args"):  # repo2docker's buildx
            engine.extra_buildx_build_args = [*engine.extra_buildx_build_args, "--no-cache"]
        return engine

    Repo2Docker.get_engine = get_engine
    r2d = make_r2d(args)
    if no_cache:
        r2d.extra_build_kwargs = {**r2d.extra_build_kwargs, "nocache": True}
        r2d.find_image = lambda: False  # build again although the name exists
    r2d.content_providers = [contentproviders.Local]
    r2d.initialize()
    try:
        r2d.start()
    except (BuildError, ImageLoadError) as e:
        r2d.log.error(f"{type(e).__name__}: {e}", extra={"phase": "failed"})
        return 1
    finally:
        r2d.close_handlers()
    return 0


if __name__ == "__main__":
    sys.exit(main())
