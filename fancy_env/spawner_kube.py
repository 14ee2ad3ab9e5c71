"""`FancyKubeSpawner`: KubeSpawner with one server-side validator for every door.

Drop-in: an existing `c.KubeSpawner.profile_list` works unchanged (config sections of
`KubeSpawner` apply to this subclass). What changes is what is *accepted*: see
docs/spawners.md.
"""

from __future__ import annotations

from kubespawner import KubeSpawner

from .spawner_base import FancySpawnerMixin


class FancyKubeSpawner(FancySpawnerMixin, KubeSpawner):
    """KubeSpawner whose `profile_list` choices are validated for the form, `?opt-` links,
    the REST API and restarts alike; builds from repositories via the build service.

    KubeSpawner's own `_start` calls `load_user_options()` before building the pod manifest;
    the mixin's version validates, confirms builds and applies overrides.
    """
