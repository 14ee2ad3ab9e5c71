"""profile_list examples copied from KubeSpawner 7.1's documentation (the `profile_list`
help text: list and dict examples) and the zero-to-jupyterhub user-environment guide."""

from __future__ import annotations

from typing import Any

DOC_LIST_EXAMPLE: list[dict[str, Any]] = [
    {
        "display_name": "Demo - profile_list entry 1",
        "description": "Demo description for profile_list entry 1, and it should look good "
        "even though it is a bit lengthy.",
        "slug": "demo-1",
        "default": True,
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "base": {
                        "display_name": "jupyter/base-notebook:latest",
                        "kubespawner_override": {"image": "jupyter/base-notebook:latest"},
                    },
                    "minimal": {
                        "display_name": "jupyter/minimal-notebook:latest",
                        "default": True,
                        "kubespawner_override": {"image": "jupyter/minimal-notebook:latest"},
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Other image",
                    "display_name_in_choices": "Enter image manually",
                    "validation_regex": "^jupyter/.+:.+$",
                    "validation_message": "Must be an image matching ^jupyter/<name>:<tag>$",
                    "kubespawner_override": {"image": "{value}"},
                },
            },
        },
        "kubespawner_override": {"default_url": "/lab"},
    },
    {
        "display_name": "Demo - profile_list entry 2",
        "slug": "demo-2",
        "kubespawner_override": {"extra_resource_guarantees": {"nvidia.com/gpu": "1"}},
    },
]

DOC_DICT_EXAMPLE: dict[str, dict[str, Any]] = {
    "demo-1": {
        "display_name": "Demo - profile_list entry 1",
        "slug": "demo-1",
        "default": True,
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "base": {
                        "display_name": "jupyter/base-notebook:latest",
                        "kubespawner_override": {"image": "jupyter/base-notebook:latest"},
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Other image",
                    "display_name_in_choices": "Enter image manually",
                    "validation_regex": "^jupyter/.+:.+$",
                    "validation_message": "Must be an image matching ^jupyter/<name>:<tag>$",
                    "kubespawner_override": {"image": "{value}"},
                },
            },
        },
        "kubespawner_override": {"default_url": "/lab"},
    },
    "demo-2": {
        "display_name": "Demo - profile_list entry 2",
        "slug": "demo-2",
        "kubespawner_override": {"extra_resource_guarantees": {"nvidia.com/gpu": "1"}},
    },
}

# zero-to-jupyterhub "Using multiple profiles" style (no slugs: generated from display_name)
Z2JH_EXAMPLE: list[dict[str, Any]] = [
    {
        "display_name": "Minimal environment",
        "description": "To avoid too much bells and whistles: Python.",
        "default": True,
    },
    {
        "display_name": "Datascience environment",
        "description": "If you want the additional bells and whistles: Python, R, and Julia.",
        "kubespawner_override": {
            "image": "quay.io/jupyter/datascience-notebook:2024-03-14",
            "cpu_limit": 2,
            "mem_limit": "4G",
            "environment": {"SCIENCE": "yes"},
        },
    },
    {
        "display_name": "GPU server",
        "kubespawner_override": {
            "image": "quay.io/jupyter/pytorch-notebook:cuda12",
            "extra_resource_limits": {"nvidia.com/gpu": "1"},
            "node_selector": {"gpu": "true"},
            "tolerations": [
                {"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
            ],
        },
        "profile_options": {
            "memory": {
                "display_name": "Memory",
                "choices": {
                    "small": {"display_name": "8 GB", "kubespawner_override": {"mem_limit": "8G"}},
                    "large": {
                        "display_name": "32 GB",
                        "kubespawner_override": {
                            "mem_limit": "32G",
                            "environment": {"BIG": "1"},
                        },
                    },
                },
            }
        },
    },
]
