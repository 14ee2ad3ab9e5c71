"""fancy_env.profiles.service_profile_list: the service's copy comes from the spawner's model."""

from __future__ import annotations

from typing import Any

import pytest

from fancy_env import configdata
from fancy_env.profiles import parse_profile_list, service_profile_list
from tests.support.kubespawner_examples import DOC_DICT_EXAMPLE, DOC_LIST_EXAMPLE, Z2JH_EXAMPLE

OURS: list[dict[str, Any]] = [
    {"display_name": "Staff", "allowed_groups": {"staff"}, "allowed_users": ("ann",),
     "kubespawner_override": {"image": "secret:1", "cmd": lambda s: ["x"]},
     "repository_build": {"enabled": True, "allowed_repos": [r"https://x/.*"],
                          "kubespawner_override": {"mem_limit": "2G"}},
     "profile_options": {"image": {"display_name": "Image", "choices": {
         "a": {"display_name": "A", "allowed_groups": ["gpu"],
               "kubespawner_override": {"image": "a:1"}},
         "b": {"display_name": "B", "default": True}},
         "unlisted_choice": {"enabled": True, "validation_regex": "^x/.*$",
                             "validation_message": "x/ only",
                             "kubespawner_override": {"image": "{value}"}}}}},
    {"display_name": "Everyone", "slug": "all", "description": "for all"},
]  # fmt: skip


def _strip(profiles: Any) -> Any:
    return [
        (p.slug, p.display_name, p.description, p.default, p.access, p.repository_build.enabled,
         p.repository_build.allowed_repos,
         [(o.name, o.display_name, [(c.key, c.display_name, c.default, c.access)
                                    for c in o.choices],
           (o.unlisted.enabled, o.unlisted.validation_regex, o.unlisted.validation_message))
          for o in p.options])
        for p in profiles
    ]  # fmt: skip


@pytest.mark.parametrize("raw", [OURS, DOC_LIST_EXAMPLE, DOC_DICT_EXAMPLE, Z2JH_EXAMPLE])
def test_same_model_without_overrides(raw: Any) -> None:
    profiles = parse_profile_list(raw)
    copy = configdata.loads(configdata.dumps(service_profile_list(profiles)))
    assert _strip(parse_profile_list(copy)) == _strip(profiles)
    assert "kubespawner_override" not in repr(copy) and "secret" not in repr(copy)
