"""Image names: deterministic, registry-safe, collision-free, hashed when truncated."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fancy_env.images import check_prefix, escape, image_name, repo_component, split_image

SHA = "0123456789abcdef0123456789abcdef01234567"
PREFIX = "127.0.0.1:5000/fancy-env/"
COMPONENT = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*")


@pytest.mark.parametrize(
    ("repo", "expected"),
    [
        ("https://github.com/o/r", f"{PREFIX}github-2ecom-2fo-2fr:{SHA}"),
        ("https://github.com/O/R", f"{PREFIX}github-2ecom-2f-4f-2f-52:{SHA}"),
        ("http://127.0.0.1:8000/r.git", f"{PREFIX}127-2e0-2e0-2e1-3a8000-2fr-2egit:{SHA}"),
        ("https://example.com/a#docs", f"{PREFIX}example-2ecom-2fa-23docs:{SHA}"),
    ],
)
def test_names(repo: str, expected: str) -> None:
    assert image_name(PREFIX, repo, SHA) == expected


def test_deterministic_and_distinct() -> None:
    a = image_name(PREFIX, "https://github.com/o/r", SHA)
    assert a == image_name(PREFIX, "https://github.com/o/r", SHA)
    assert a != image_name(PREFIX, "https://github.com/o/r2", SHA)
    assert a != image_name(PREFIX, "https://github.com/o/r", "f" * 40)
    assert a != image_name(PREFIX, "https://github.com/o-r", SHA)


def test_truncated_names_get_a_hash() -> None:
    long_a = "https://example.com/" + "a" * 300
    long_b = "https://example.com/" + "a" * 299 + "b"
    ca, cb = repo_component(long_a), repo_component(long_b)
    assert len(ca) <= 120 and len(cb) <= 120
    assert ca != cb
    assert COMPONENT.fullmatch(ca)


@given(st.text(min_size=1, max_size=400))
@example("-" * 40)  # escapes to exactly 120 characters, then gains the leading "r": truncated
def test_component_is_always_registry_safe(text: str) -> None:
    component = repo_component("https://" + text)
    assert len(component) <= 120
    assert COMPONENT.fullmatch(component), component


@given(st.text(max_size=50), st.text(max_size=50))
def test_escape_is_injective(a: str, b: str) -> None:
    if a != b:
        assert escape(a) != escape(b)


@pytest.mark.parametrize("prefix", ["", "fancy-env/", "127.0.0.1:5000/fancy-env/", "r.io/a/b/"])
def test_good_prefixes(prefix: str) -> None:
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["fancy-env", "Upper/", "a//", "-x/", "r.io/a b/"])
def test_bad_prefixes(prefix: str) -> None:
    with pytest.raises(ValueError, match="must look like"):
        check_prefix(prefix)


def test_bad_tag() -> None:
    with pytest.raises(ValueError, match="not a valid image tag"):
        image_name(PREFIX, "https://x.org/a", "-bad")


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        ("127.0.0.1:5000/a/b:tag", ("127.0.0.1:5000/a/b", "tag")),
        ("127.0.0.1:5000/a/b", ("127.0.0.1:5000/a/b", "latest")),
        ("b:1", ("b", "1")),
    ],
)
def test_split_image(image: str, parts: tuple[str, str]) -> None:
    assert split_image(image) == parts
