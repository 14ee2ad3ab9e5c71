"""fancy_env.configdata: the strict hub → service config serialiser (pure, parameter tables)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fancy_env import configdata
from fancy_env.configdata import ConfigDataError
from fancy_env.profiles import parse_profile_list

ROUND_TRIPS: list[Any] = [
    None, True, False, 0, -3, 2**70, 1.5, "", "héllo", [], [1, "a", None],
    (), (1, 2), ("a", ("b",)), set(), {"staff"}, {"b", "a", "c"}, frozenset({"x"}),
    {1, "1"}, {(1, 2), (3,)}, {"k": {"nested": [{"deep": (1, {"s"})}]}},
    # real dicts that look like a tag are wrapped, so they come back as dicts
    {"$set": [1, 2]}, {"$tuple": []}, {"$dict": {"a": 1}}, {"$set": 1, "other": 2},
    [{"$frozenset": ["x"]}],
]  # fmt: skip


@pytest.mark.parametrize("value", ROUND_TRIPS, ids=repr)
def test_round_trip(value: Any) -> None:
    back = configdata.loads(configdata.dumps(value))
    assert back == value
    assert type(back) is type(value)


def test_sets_are_stable_text() -> None:
    assert configdata.dumps({"b", "a"}) == configdata.dumps({"a", "b"})
    assert json.loads(configdata.dumps({"b", "a"})) == {"$set": ["a", "b"]}


def _fn() -> None:
    return None


class Thing:
    pass


PROFILE = {
    "display_name": "Image",
    "profile_options": {"image": {"choices": {"x": {"kubespawner_override": {"foo": None}}}}},
}

REFUSALS: list[tuple[Any, str, str, str]] = [
    # (value, root path, path named, words in the message)
    (_fn, "BuilderApp.hook", "BuilderApp.hook", "callable (_fn)"),
    (lambda s: s, "X.y", "X.y", "callable (<lambda>)"),
    (Thing(), "X.y", "X.y", "Thing object"),
    (b"secret", "X.y", "X.y", "bytes"),
    (bytearray(b"x"), "X.y", "X.y", "bytes"),
    (float("nan"), "X.y", "X.y", "finite"),
    (float("inf"), "X.y", "X.y", "finite"),
    ({1: "a"}, "X.y", "X.y[1]", "keys must be strings"),
    ({("a",): "a"}, "X.y", "X.y[('a',)]", "keys must be strings"),
    ([1, [2, _fn]], "X.y", "X.y[1][1]", "callable"),
    ((1, Thing()), "X.y", "X.y[1]", "Thing"),
    ({b"x"}, "X.y", "X.y{b'x'}", "bytes"),
    ({"a": {"b": [{"c": Thing()}]}}, "", "a.b[0].c", "Thing"),
    (
        {"FancyEnvSharing": {"profile_list": [{}, {}, PROFILE]}},
        "",
        "FancyEnvSharing.profile_list[2].profile_options.image.choices.x.kubespawner_override.foo",
        "Thing",
    ),
]


def _with_thing(value: Any) -> Any:
    """PROFILE with a Thing in its deepest slot (a fresh one per test)."""
    if isinstance(value, dict) and "FancyEnvSharing" in value:
        profile = json.loads(json.dumps(PROFILE))
        profile["profile_options"]["image"]["choices"]["x"]["kubespawner_override"]["foo"] = Thing()
        return {"FancyEnvSharing": {"profile_list": [{}, {}, profile]}}
    return value


@pytest.mark.parametrize(("value", "root", "path", "words"), REFUSALS)
def test_refusals_name_the_path(value: Any, root: str, path: str, words: str) -> None:
    with pytest.raises(ConfigDataError) as e:
        configdata.dumps(_with_thing(value), root)
    assert e.value.path == path
    assert str(e.value).startswith(f"{path}: ")
    assert words in str(e.value)
    assert "carries only" in str(e.value)  # and says what can be carried


def test_profile_model_accepts_what_comes_back() -> None:
    """A `profile_list` with sets and tuples, through the file, parses to the same model."""
    raw = [
        {"display_name": "Staff", "slug": "staff", "allowed_groups": {"staff", "ops"},
         "allowed_users": ("ann",),
         "profile_options": {"image": {"display_name": "Image", "choices": {
             "a": {"display_name": "A", "allowed_groups": frozenset({"gpu"})}}}}},
    ]  # fmt: skip
    back = configdata.loads(configdata.dumps(raw))
    assert parse_profile_list(back) == parse_profile_list(raw)
    assert parse_profile_list(back)[0].access.allowed_groups == {"staff", "ops"}
