"""The typed profile_list model: KubeSpawner's defaults, exact error paths, per-user views."""

from __future__ import annotations

from typing import Any

import pytest

from fancy_env.profiles import (
    Access,
    ProfileConfigError,
    default_profile,
    parse_profile_list,
    regex_warnings,
    visible_profiles,
)

IMAGE_OPTION = {
    "display_name": "Image",
    "choices": {
        "base": {"display_name": "Base", "kubespawner_override": {"image": "b:1"}},
        "py311": {"display_name": "Python 3.11", "kubespawner_override": {"image": "p:3.11"}},
    },
}


def profile(name: str = "Small", **extra: Any) -> dict[str, Any]:
    return {"display_name": name, **extra}


# --- accepted configs and the defaults KubeSpawner fills --------------------------------

SLUG_CASES = [
    ("Small", "small"),
    ("Demo - profile_list entry 1", "demo-profile-list-entry-1"),
    ("GPU (A100) 80 GB", "gpu-a100-80-gb"),
    ("Données élevées", "donnees-elevees"),
    ("  spaced  out ", "spaced-out"),
]


@pytest.mark.parametrize(("display_name", "slug"), SLUG_CASES)
def test_slug_from_display_name_like_kubespawner(display_name: str, slug: str) -> None:
    from slugify import slugify

    (p,) = parse_profile_list([profile(display_name)])
    assert p.slug == slug == slugify(display_name)


def test_explicit_slug_kept() -> None:
    (p,) = parse_profile_list([profile("Small", slug="tiny")])
    assert p.slug == "tiny"


DEFAULT_PROFILE_CASES = [
    ([{}, {}, {}], 0),
    ([{}, {"default": True}, {}], 1),
    ([{}, {"default": True}, {"default": True}], 1),  # KubeSpawner: the first default wins
    ([{"default": False}, {}, {"default": True}], 2),
]


@pytest.mark.parametrize(("flags", "expected"), DEFAULT_PROFILE_CASES)
def test_exactly_one_default_profile(flags: list[dict[str, Any]], expected: int) -> None:
    raw = [profile(f"P{i}", **f) for i, f in enumerate(flags)]
    profiles = parse_profile_list(raw)
    assert [p.default for p in profiles] == [i == expected for i in range(len(flags))]
    assert default_profile(profiles) is profiles[expected]


DEFAULT_CHOICE_CASES = [
    ({}, "base"),
    ({"py311": True}, "py311"),
    ({"base": True, "py311": True}, "base"),
]


@pytest.mark.parametrize(("defaults", "expected"), DEFAULT_CHOICE_CASES)
def test_default_choice(defaults: dict[str, bool], expected: str) -> None:
    option = {
        "choices": {
            key: {"display_name": key, "default": defaults.get(key, False)}
            for key in ("base", "py311")
        }
    }
    (p,) = parse_profile_list([profile(profile_options={"image": option})])
    opt = p.options[0]
    assert opt.default_choice is not None and opt.default_choice.key == expected
    assert [c.default for c in opt.choices].count(True) == 1


def test_kubespawner_doc_list_example_parses() -> None:
    from tests.support.kubespawner_examples import DOC_LIST_EXAMPLE

    profiles = parse_profile_list(DOC_LIST_EXAMPLE)
    assert [p.slug for p in profiles] == ["demo-1", "demo-2"]
    image = profiles[0].options[0]
    assert image.unlisted.enabled and image.unlisted.validation_regex == "^jupyter/.+:.+$"
    assert image.unlisted.override == {"image": "{value}"}
    assert image.default_choice is not None and image.default_choice.key == "minimal"
    assert profiles[1].override == {"extra_resource_guarantees": {"nvidia.com/gpu": "1"}}


def test_dict_profile_list_sorted_by_key_like_kubespawner() -> None:
    profiles = parse_profile_list({"b": profile("Bee"), "a": profile("Ay")})
    assert [p.slug for p in profiles] == ["ay", "bee"]


def test_empty_and_none() -> None:
    assert parse_profile_list([]) == ()
    assert parse_profile_list(None) == ()


def test_unknown_keys_accepted_like_kubespawner() -> None:
    (p,) = parse_profile_list([profile(something_new=1)])
    assert p.raw["something_new"] == 1


def test_extra_keys_parsed() -> None:
    (p,) = parse_profile_list(
        [
            profile(
                allowed_groups=["staff"],
                allowed_users=["alice"],
                repository_build={
                    "enabled": True,
                    "allowed_repos": [r"https://git\.example\.org/.*"],
                    "kubespawner_override": {"mem_limit": "2G"},
                },
            )
        ]
    )
    assert p.access == Access(frozenset({"alice"}), frozenset({"staff"}))
    assert p.repository_build.enabled
    assert p.repository_build.override == {"mem_limit": "2G"}


# --- errors name the exact path ------------------------------------------------------

ERROR_CASES = [
    ("not a list", "profile_list", "must be a list"),
    ([42], "profile_list[0]", "must be a dict"),
    ([{}], "profile_list[0].display_name", "is required"),
    ([{"display_name": 3}], "profile_list[0].display_name", "must be a string"),
    ([profile(), profile("B", slug="")], "profile_list[1].slug", "non-empty"),
    ([profile("A"), profile("a")], "profile_list[1].slug", "duplicate slug 'a'"),
    ([profile(default="yes")], "profile_list[0].default", "true or false"),
    (
        [profile(kubespawner_override=["image"])],
        "profile_list[0].kubespawner_override",
        "must be a dict",
    ),
    ([profile(profile_options=[])], "profile_list[0].profile_options", "must be a dict"),
    (
        [profile(profile_options={"image": {}})],
        "profile_list[0].profile_options.image",
        "needs choices or an enabled unlisted_choice",
    ),
    (
        [profile(profile_options={"profile": IMAGE_OPTION})],
        "profile_list[0].profile_options.profile",
        "reserved",
    ),
    (
        [profile(profile_options={"x--unlisted-choice": IMAGE_OPTION})],
        "profile_list[0].profile_options.x--unlisted-choice",
        "reserved",
    ),
    (
        [
            profile(),
            profile("B", profile_options={"image": {"choices": {"py311": {"display_name": 3.11}}}}),
        ],
        "profile_list[1].profile_options.image.choices.py311.display_name",
        "must be a string",
    ),
    (
        [profile(profile_options={"image": {"choices": {"py311": "x"}}})],
        "profile_list[0].profile_options.image.choices.py311",
        "must be a dict",
    ),
    (
        [profile(profile_options={"image": {"choices": {"a": {"kubespawner_override": 1}}}})],
        "profile_list[0].profile_options.image.choices.a.kubespawner_override",
        "must be a dict",
    ),
    (
        [
            profile(
                profile_options={
                    "image": {"unlisted_choice": {"enabled": True, "validation_regex": "(["}}
                }
            )
        ],
        "profile_list[0].profile_options.image.unlisted_choice.validation_regex",
        "not a valid regular expression",
    ),
    ([profile(allowed_groups="staff")], "profile_list[0].allowed_groups", "list of strings"),
    ([profile(allowed_users=["ok", 7])], "profile_list[0].allowed_users[1]", "must be a string"),
    (
        [profile(repository_build={"enabled": True, "allowed_repos": ["("]})],
        "profile_list[0].repository_build.allowed_repos[0]",
        "not a valid regular expression",
    ),
    ([profile(repository_build=True)], "profile_list[0].repository_build", "must be a dict"),
    ([profile("!!!")], "profile_list[0].display_name", "empty slug"),
    (
        {"b": profile("B", default=1), "a": profile("A")},
        "profile_list['b'].default",
        "true or false",
    ),
]


@pytest.mark.parametrize(("raw", "path", "message"), ERROR_CASES)
def test_errors_name_the_path(raw: Any, path: str, message: str) -> None:
    with pytest.raises(ProfileConfigError) as info:
        parse_profile_list(raw)
    assert info.value.path == path
    assert message in info.value.message
    assert str(info.value).startswith(path + ": ")


# --- who sees what -------------------------------------------------------------------

ACCESS_RAW = [
    profile(
        "Open",
        profile_options={
            "image": {
                "choices": {
                    "base": {"display_name": "Base"},
                    "gpu": {
                        "display_name": "GPU",
                        "allowed_groups": ["gpu-users"],
                        "default": True,
                    },
                }
            }
        },
    ),
    profile("Staff", allowed_groups=["staff"], default=True),
    profile("Alice only", allowed_users=["alice"]),
    profile(
        "GPU only",
        profile_options={
            "image": {"choices": {"gpu": {"display_name": "GPU", "allowed_groups": ["gpu-users"]}}}
        },
    ),
]

VISIBILITY_CASES = [
    ("bob", [], ["open"], "open", ["base"]),
    ("bob", ["staff"], ["open", "staff"], "staff", ["base"]),
    ("alice", [], ["open", "alice-only"], "open", ["base"]),
    ("carol", ["gpu-users"], ["open", "gpu-only"], "open", ["base", "gpu"]),
    (
        "alice",
        ["staff", "gpu-users"],
        ["open", "staff", "alice-only", "gpu-only"],
        "staff",
        ["base", "gpu"],
    ),
]


@pytest.mark.parametrize(("user", "groups", "slugs", "default", "open_choices"), VISIBILITY_CASES)
def test_visible_profiles(
    user: str, groups: list[str], slugs: list[str], default: str, open_choices: list[str]
) -> None:
    mine = visible_profiles(parse_profile_list(ACCESS_RAW), user, groups)
    assert [p.slug for p in mine] == slugs
    assert [p.slug for p in mine if p.default] == [default]
    open_profile = mine[0]
    assert [c.key for c in open_profile.options[0].choices] == open_choices
    # the default choice is re-assigned when the configured default is hidden
    assert [c.key for c in open_profile.options[0].choices if c.default] == [
        "gpu" if "gpu" in open_choices else "base"
    ]


# --- the prefix-regex warning ----------------------------------------------------------

REGEX_WARNING_CASES = [
    ("^jupyter/.+:.+$", False),
    ("^pangeo/", True),
    ("^pangeo/.*", False),
    ("[a-z]+", True),
    ("a|b$", True),
    ("(?:a|b)$", False),
    (r"x\Z", False),
    ("^org/[^:]+", True),
]


@pytest.mark.parametrize(("regex", "warns"), REGEX_WARNING_CASES)
def test_regex_warnings(regex: str, warns: bool) -> None:
    raw = [
        profile(),
        profile(
            "B",
            profile_options={
                "image": {"unlisted_choice": {"enabled": True, "validation_regex": regex}}
            },
        ),
    ]
    warnings = regex_warnings(parse_profile_list(raw))
    assert bool(warnings) is warns
    if warns:
        assert warnings[0].startswith(
            "profile_list[1].profile_options.image.unlisted_choice.validation_regex:"
        )
