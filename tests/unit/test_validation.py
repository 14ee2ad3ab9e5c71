"""The one validator: every door (form, ?opt- query, REST, saved options) gets the same rules."""

from __future__ import annotations

from typing import Any

import pytest

from fancy_env.profiles import parse_profile_list
from fancy_env.validation import (
    Selection,
    ValidationError,
    user_options_from_form,
    validate_form,
    validate_user_options,
)
from tests.support.kubespawner_examples import DOC_LIST_EXAMPLE

RAW: list[dict[str, Any]] = [
    {
        "display_name": "Small",
        "slug": "small",
        "default": True,
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "base": {"display_name": "Base", "kubespawner_override": {"image": "b:1"}},
                    "py311": {"display_name": "Py", "kubespawner_override": {"image": "p:1"}},
                    "gpu": {"display_name": "GPU", "allowed_groups": ["gpu-users"]},
                },
                "unlisted_choice": {
                    "enabled": True,
                    "validation_regex": "^jupyter/.+:.+$",
                    "validation_message": "Must be jupyter/<name>:<tag>",
                    "kubespawner_override": {"image": "{value}"},
                },
            },
            "size": {
                "display_name": "Size",
                "choices": {"s": {"display_name": "S"}, "l": {"display_name": "L"}},
            },
        },
    },
    {
        "display_name": "Builds",
        "slug": "builds",
        "repository_build": {"enabled": True},
    },
    {"display_name": "Staff", "slug": "staff", "allowed_groups": ["staff"]},
    {
        "display_name": "Free",
        "slug": "free",
        "profile_options": {"tag": {"unlisted_choice": {"enabled": True}}},
    },
]
PROFILES = parse_profile_list(RAW)


def check(user_options: Any, user: str = "bob", groups: tuple[str, ...] = ()) -> Selection:
    return validate_user_options(PROFILES, user, groups, user_options)


# --- accepted ------------------------------------------------------------------------

ACCEPTED = [
    ({}, Selection("small", {"image": "base", "size": "s"})),
    (None, Selection("small", {"image": "base", "size": "s"})),
    ({"profile": "small"}, Selection("small", {"image": "base", "size": "s"})),
    ({"profile": ""}, Selection("small", {"image": "base", "size": "s"})),
    ({"profile": "small", "image": "py311"}, Selection("small", {"image": "py311", "size": "s"})),
    ({"image": "py311", "size": "l"}, Selection("small", {"image": "py311", "size": "l"})),
    (
        {"profile": "small", "image": "", "size": ""},
        Selection("small", {"image": "base", "size": "s"}),
    ),
    (
        {"profile": "small", "image--unlisted-choice": "jupyter/scipy:2024"},
        Selection("small", {"size": "s"}, {"image": "jupyter/scipy:2024"}),
    ),
    (
        {
            "profile": "small",
            "image": "unlisted-choice",
            "image--unlisted-choice": "jupyter/scipy:2024",
        },
        Selection("small", {"size": "s"}, {"image": "jupyter/scipy:2024"}),
    ),
    ({"profile": "builds"}, Selection("builds")),
    ({"profile": "builds", "build_id": "b-123_x.y"}, Selection("builds", build_id="b-123_x.y")),
    (
        {"profile": "free", "tag--unlisted-choice": "anything at all"},
        Selection("free", {}, {"tag": "anything at all"}),
    ),
]


@pytest.mark.parametrize(("user_options", "expected"), ACCEPTED)
def test_accepted(user_options: Any, expected: Selection) -> None:
    assert check(user_options) == expected


def test_hidden_choice_allowed_for_its_group() -> None:
    assert check({"image": "gpu"}, groups=("gpu-users",)).choices["image"] == "gpu"


def test_hidden_profile_allowed_for_its_group() -> None:
    assert check({"profile": "staff"}, groups=("staff",)).profile == "staff"


def test_selection_round_trips_through_user_options() -> None:
    for user_options, _ in ACCEPTED:
        selection = check(user_options)
        assert check(selection.to_user_options()) == selection


# --- refused -------------------------------------------------------------------------

REFUSED = [
    # field, message fragment, allowed
    ({"profile": "nope"}, "profile", "unknown profile 'nope'", ("small", "builds", "free")),
    # a hidden profile is reported exactly like an unknown one
    ({"profile": "staff"}, "profile", "unknown profile 'staff'", ("small", "builds", "free")),
    ({"image": "nope"}, "image", "unknown choice 'nope'", ("base", "py311")),
    ({"image": "gpu"}, "image", "unknown choice 'gpu'", ("base", "py311")),
    ({"size": "xl"}, "size", "unknown choice 'xl'", ("s", "l")),
    ({"image": "unlisted-choice"}, "image--unlisted-choice", "enter a value", ()),
    (
        {"image--unlisted-choice": "quay.io/evil:1"},
        "image--unlisted-choice",
        "Must be jupyter/<name>:<tag>",
        ("^jupyter/.+:.+$",),
    ),
    (
        {"image--unlisted-choice": "jupyter/x:1\n"},
        "image--unlisted-choice",
        "is not allowed",
        ("^jupyter/.+:.+$",),
    ),
    (
        {"image--unlisted-choice": "jupyter/no-tag"},
        "image--unlisted-choice",
        "is not allowed",
        ("^jupyter/.+:.+$",),
    ),
    (
        {"image": "nope", "image--unlisted-choice": "jupyter/x:1"},
        "image",
        "unknown choice",
        ("base", "py311"),
    ),
    (
        {"size--unlisted-choice": "huge"},
        "size--unlisted-choice",
        "free text is not allowed",
        ("s", "l"),
    ),
    ({"profile": "free"}, "tag--unlisted-choice", "enter a value", ()),
    ({"profile": 3}, "profile", "must be a string", ()),
    ({"image": ["base"]}, "image", "must be a string", ()),
    ({"image": {"kubespawner_override": {}}}, "image", "must be a string", ()),
    (
        {"image--unlisted-choice": "jupyter/" + "x" * 2000 + ":1"},
        "image--unlisted-choice",
        "longer than",
        (),
    ),
    ({"cmd": ["rm", "-rf", "/"]}, "cmd", "is not an option of profile 'small'", None),
    ({"kubespawner_override": {"image": "evil"}}, "kubespawner_override", "is not an option", None),
    (
        {"profile": "builds", "image": "evil:latest"},
        "image",
        "is not an option of profile",
        ("build_id", "labpath", "profile", "urlpath"),
    ),
    ({"mem_limit": "100G"}, "mem_limit", "images, commands and overrides", None),
    ({"build_id": "b1"}, "build_id", "does not start servers built from repositories", ("builds",)),
    ({"profile": "builds", "build_id": "../../etc"}, "build_id", "is not a build id", ()),
    ({"profile": "builds", "build_id": 7}, "build_id", "must be a string", ()),
    ([("profile", "small")], "user_options", "must be an object", ()),
    ("profile=small", "user_options", "must be an object", ()),
]


@pytest.mark.parametrize(("user_options", "field", "message", "allowed"), REFUSED)
def test_refused(user_options: Any, field: str, message: str, allowed: Any) -> None:
    with pytest.raises(ValidationError) as info:
        check(user_options)
    error = info.value
    assert error.field == field
    assert message in error.message
    if allowed is not None:
        assert error.allowed == allowed
    assert str(error).startswith(f"{field}: ")
    if error.allowed:
        assert str(error).endswith(f"Allowed: {', '.join(error.allowed)}.")


def test_no_profiles_accepts_only_empty_options() -> None:
    assert validate_user_options((), "bob", (), {}) == Selection("")
    with pytest.raises(ValidationError, match="no profiles are configured"):
        validate_user_options((), "bob", (), {"image": "evil"})


def test_user_who_sees_no_profile() -> None:
    only_staff = parse_profile_list([{"display_name": "S", "allowed_groups": ["staff"]}])
    with pytest.raises(ValidationError, match="no profile is available to you"):
        validate_user_options(only_staff, "bob", (), {})


# --- KubeSpawner 7.1's holes, one test each --------------------------------------------

DOC_PROFILES = parse_profile_list(DOC_LIST_EXAMPLE)


def test_hole_re_match_prefix_is_refused() -> None:
    """KubeSpawner: re.match('^jupyter/.+:.+$', 'jupyter/x:1\\n…') — `$` matches before a
    trailing newline, and a regex without `$` accepts anything after the prefix."""
    import re

    sneaky = "jupyter/base:1\n"
    assert re.match("^jupyter/.+:.+$", sneaky)  # what KubeSpawner accepted
    with pytest.raises(ValidationError, match="is not allowed"):
        validate_user_options(
            DOC_PROFILES, "u", (), {"profile": "demo-1", "image--unlisted-choice": sneaky}
        )
    prefix_only = parse_profile_list(
        [
            {
                "display_name": "P",
                "profile_options": {
                    "image": {"unlisted_choice": {"enabled": True, "validation_regex": "^jupyter/"}}
                },
            }
        ]
    )
    assert re.match("^jupyter/", "jupyter/x:1; curl evil")
    with pytest.raises(ValidationError):
        validate_user_options(prefix_only, "u", (), {"image--unlisted-choice": "jupyter/x:1 y"})


def test_hole_unknown_choice_is_a_clear_error_not_keyerror() -> None:
    """KubeSpawner: option['choices'][choice] -> bare KeyError('nope') at spawn time."""
    with pytest.raises(ValidationError) as info:
        validate_user_options(DOC_PROFILES, "u", (), {"profile": "demo-1", "image": "nope"})
    assert info.value.field == "image"
    assert info.value.allowed == ("base", "minimal")
    assert not isinstance(info.value, KeyError)


def test_hole_rest_unlisted_value_without_profile_key_is_validated() -> None:
    """KubeSpawner: no 'profile' key -> _validate_user_options returns early, then
    _load_profile applies the unlisted value to the default profile unchecked."""
    with pytest.raises(ValidationError, match="Must be an image matching"):
        validate_user_options(DOC_PROFILES, "u", (), {"image--unlisted-choice": "evil/img:1"})
    ok = validate_user_options(DOC_PROFILES, "u", (), {"image--unlisted-choice": "jupyter/a:b"})
    assert ok == Selection("demo-1", {}, {"image": "jupyter/a:b"})


# --- form data (POST body and ?opt- query) ----------------------------------------------

FORM_CASES = [
    ({}, {}),
    ({"profile": ["small"]}, {"profile": "small"}),
    (
        {
            "profile": ["small"],
            "profile-option-small--image": ["py311"],
            "profile-option-builds--x": ["ignored"],
            "_xsrf": ["t"],
        },
        {"profile": "small", "image": "py311"},
    ),
    (
        {
            "profile": ["small"],
            "profile-option-small--image": ["unlisted-choice"],
            "profile-option-small--image--unlisted-choice": ["jupyter/a:b"],
        },
        {"profile": "small", "image": "unlisted-choice", "image--unlisted-choice": "jupyter/a:b"},
    ),
    ({"profile": ["builds"], "build_id": ["b1"]}, {"profile": "builds", "build_id": "b1"}),
    ({"profile-option-small--image": ["py311"]}, {}),  # no profile: like KubeSpawner
]


@pytest.mark.parametrize(("formdata", "expected"), FORM_CASES)
def test_user_options_from_form(formdata: dict[str, list[str]], expected: dict[str, str]) -> None:
    assert user_options_from_form(formdata) == expected


FORM_REFUSED = [
    ({"profile": ["small"], "profile-option-small--image": ["gpu"]}, "profile-option-small--image"),
    (
        {"profile": ["small"], "profile-option-small--image--unlisted-choice": ["x"]},
        "profile-option-small--image--unlisted-choice",
    ),
    ({"profile": ["small"], "profile-option-small--cmd": ["sh"]}, "profile-option-small--cmd"),
    ({"profile": ["nope"]}, "profile"),
    ({"profile": ["small"], "build_id": ["b1"]}, "build_id"),
]


@pytest.mark.parametrize(("formdata", "field"), FORM_REFUSED)
def test_form_errors_name_the_form_field(formdata: dict[str, list[str]], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_form(PROFILES, "bob", (), formdata)
    assert info.value.field == field


def test_form_and_rest_agree() -> None:
    form = {"profile": ["small"], "profile-option-small--size": ["l"]}
    assert validate_form(PROFILES, "bob", (), form) == check({"profile": "small", "size": "l"})
