"""Free-text images: valid references pass, anything else is a 400 naming the field (pure)."""

from __future__ import annotations

import pytest

from fancy_env.profiles import parse_profile_list
from fancy_env.validation import ValidationError, is_image_reference, validate_user_options

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "reference",
    [
        "ubuntu",
        "ubuntu:22.04",
        "library/ubuntu",
        "quay.io/jupyter/base-notebook:2024-01-01",
        "127.0.0.1:5000/fancy-env/a-b_c.d:v1.2",
        "localhost:5000/x",
        "registry.example.org/team/image@" + DIGEST,
        "registry.example.org/team/image:tag@" + DIGEST,
        "[::1]:5000/x:1",
        "a__b/c--d/e.f",
        "x" * 255,
    ],
)
def test_valid_references(reference: str) -> None:
    assert is_image_reference(reference)


@pytest.mark.parametrize(
    "reference",
    [
        "",
        "Ubuntu",  # upper case in the path
        "quay.io/x:",  # empty tag
        "quay.io//x",  # empty path component
        "x y",
        "a:b:c",
        "quay.io/x:-bad",  # tag starts with '-'
        "quay.io/x:" + "t" * 129,  # tag too long
        "a___b",
        "-x",
        "x-",
        "quay.io/x@sha256:abc",  # digest too short
        "x" * 256,  # name too long
        "quay.io/x\n",
        "quay.io/x;rm -rf /",
    ],
)
def test_invalid_references(reference: str) -> None:
    assert not is_image_reference(reference)


PROFILES = parse_profile_list([{
    "display_name": "Custom", "slug": "custom",
    "profile_options": {"image": {
        "display_name": "Image",
        "choices": {"base": {"display_name": "Base", "kubespawner_override": {"image": "b:1"}}},
        "unlisted_choice": {
            "enabled": True, "display_name": "Image",
            "validation_regex": r"quay\.io/.+",  # the admin's regex lets odd text through
            "kubespawner_override": {"image": "{value}"},
        },
    }},
}])  # fmt: skip


@pytest.mark.parametrize(
    ("value", "ok"),
    [("quay.io/org/img:1", True), ("quay.io/Org/Img", False), ("quay.io/x y", False)],
)
def test_free_text_image_passing_the_regex_must_be_a_reference(value: str, ok: bool) -> None:
    options = {"profile": "custom", "image": "unlisted-choice", "image--unlisted-choice": value}
    if ok:
        assert validate_user_options(PROFILES, "alice", (), options).unlisted == {"image": value}
        return
    with pytest.raises(ValidationError) as info:
        validate_user_options(PROFILES, "alice", (), options)
    assert info.value.field == "image--unlisted-choice"
    assert "not a valid image reference" in info.value.text
