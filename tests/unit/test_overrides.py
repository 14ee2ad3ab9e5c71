"""Overrides apply in KubeSpawner's order, with `{value}` substitution and dict merging."""

from __future__ import annotations

from typing import Any

import pytest

from fancy_env.overrides import apply_layers, format_value, merge_into, override_layers
from fancy_env.profiles import parse_profile_list
from fancy_env.validation import Selection, validate_user_options

RAW: list[dict[str, Any]] = [
    {
        "display_name": "Small",
        "slug": "small",
        "kubespawner_override": {
            "image": "base:1",
            "environment": {"A": "profile", "B": "profile"},
            "default_url": "/lab",
        },
        "profile_options": {
            "image": {
                "choices": {
                    "py311": {"kubespawner_override": {"image": "py:3.11"}},
                    "keep": {},
                },
                "unlisted_choice": {
                    "enabled": True,
                    "kubespawner_override": {
                        "image": "jupyter/{value}",
                        "environment": {"TAG": "{value}", "USER": "{username}"},
                    },
                },
            },
            "env": {
                "choices": {
                    "b": {"kubespawner_override": {"environment": {"B": "choice", "C": "c"}}},
                    "drop": {"kubespawner_override": {"environment": {"A": None}}},
                },
            },
        },
        "repository_build": {
            "enabled": True,
            "kubespawner_override": {"mem_limit": "4G", "image": "never-used"},
        },
    }
]
(PROFILE,) = parse_profile_list(RAW)
CURRENT = {"image": "config:1", "environment": {"Z": "config"}, "mem_limit": None}

CASES = [
    (
        {"image": "py311", "env": "b"},
        None,
        {
            "image": "py:3.11",
            "environment": {"Z": "config", "A": "profile", "B": "choice", "C": "c"},
            "default_url": "/lab",
        },
    ),
    (
        {"image": "keep", "env": "drop"},
        None,
        {"image": "base:1", "environment": {"Z": "config", "B": "profile"}, "default_url": "/lab"},
    ),
    (
        {"image--unlisted-choice": "scipy:2024", "env": "b"},
        None,
        {
            "image": "jupyter/scipy:2024",
            "environment": {
                "Z": "config",
                "A": "profile",
                "B": "choice",
                "C": "c",
                "TAG": "scipy:2024",
                "USER": "{username}",
            },
            "default_url": "/lab",
        },
    ),
    (
        {"image": "py311", "env": "b", "build_id": "b1"},
        "127.0.0.1:5000/fancy-env/repo:abc",
        {
            "image": "127.0.0.1:5000/fancy-env/repo:abc",
            "environment": {"Z": "config", "A": "profile", "B": "choice", "C": "c"},
            "default_url": "/lab",
            "mem_limit": "4G",
        },
    ),
]


@pytest.mark.parametrize(("user_options", "image", "expected"), CASES)
def test_kubespawner_order(
    user_options: dict[str, str], image: str | None, expected: dict[str, Any]
) -> None:
    selection = validate_user_options((PROFILE,), "u", (), user_options)
    layers = override_layers(PROFILE, selection, image)
    assert apply_layers(CURRENT, layers) == expected
    assert CURRENT["environment"] == {"Z": "config"}  # the snapshot is not mutated


def test_order_of_layers() -> None:
    selection = Selection("small", {"image": "py311", "env": "b"}, build_id="b1")
    layers = override_layers(PROFILE, selection, "img")
    assert layers[0]["image"] == "base:1"  # profile first
    assert layers[1] == {"image": "py:3.11"}  # options in the profile's order
    assert layers[2] == {"environment": {"B": "choice", "C": "c"}}
    assert layers[3] == {"mem_limit": "4G", "image": "never-used"}  # repository_build
    assert layers[-1] == {"image": "img"}  # the confirmed image wins


def test_build_needs_confirmed_image() -> None:
    with pytest.raises(ValueError, match="confirmed image"):
        override_layers(PROFILE, Selection("small", {"image": "keep", "env": "b"}, build_id="b"))


def test_selection_for_other_profile_refused() -> None:
    with pytest.raises(ValueError):
        override_layers(PROFILE, Selection("other"))


FORMAT_CASES = [
    ("{value}", "v"),
    ("img/{value}:latest", "img/v:latest"),
    ("{username}-{value}", "{username}-v"),
    (["{value}", 3, {"k-{value}": "{value}"}], ["v", 3, {"k-v": "v"}]),
    ({"{value}"}, {"v"}),
    (42, 42),
    ("{0} {value}", "{0} v"),
    ("{value.upper}", "{value.upper}"),
    ("broken { brace {value}", "broken { brace v"),
]


@pytest.mark.parametrize(("template", "expected"), FORMAT_CASES)
def test_format_value_like_kubespawner(template: Any, expected: Any) -> None:
    assert format_value(template, "v") == expected


def test_format_value_does_not_reinterpret_the_users_text() -> None:
    assert format_value("img/{value}", "{username}") == "img/{username}"


MERGE_CASES = [
    ({"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
    ({"a": {"x": 1}}, {"a": {"y": 2}}, {"a": {"x": 1, "y": 2}}),
    ({"a": {"x": 1}}, {"a": {"x": None}}, {"a": {}}),
    ({"a": 1}, {"a": {"y": 2}}, {"a": {"y": 2}}),
    ({"a": [1]}, {"a": [2]}, {"a": [2]}),
]


@pytest.mark.parametrize(("target", "new", "expected"), MERGE_CASES)
def test_merge_like_recursive_update(
    target: dict[str, Any], new: dict[str, Any], expected: dict[str, Any]
) -> None:
    merge_into(target, new)
    assert target == expected
