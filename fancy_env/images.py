"""Deterministic, DNS- and registry-safe image names (pure, no I/O).

    image_name("127.0.0.1:5000/fancy-env/", "https://github.com/o/r", sha)
    -> "127.0.0.1:5000/fancy-env/github-2ecom-2fo-2fr:<sha>"

The repository part is the normalised URL (plus `#subdir` when there is one) escaped so that
only `[a-z0-9-]` remain (every other character becomes `-` and two hex digits, so different
inputs never collide), capped at `max_length` with a short hash of the full text when cut.
The tag is the full commit.
"""

from __future__ import annotations

import hashlib
import re

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_PREFIX = re.compile(r"([a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?/)?([a-z0-9]+([._-][a-z0-9]+)*/)*")
HASH_LENGTH = 10


def escape(text: str) -> str:
    """Injective escape into `[a-z0-9-]`: other characters become `-xx` (UTF-8 hex)."""
    out = []
    for char in text:
        if char in _SAFE:
            out.append(char)
        else:
            out.extend(f"-{b:02x}" for b in char.encode("utf-8"))
    return "".join(out)


def repo_component(repo_key: str, max_length: int = 120) -> str:
    """The escaped repository path component, truncated with a short hash when too long."""
    if max_length < HASH_LENGTH + 8:
        raise ValueError("max_length is too small")
    url = repo_key.split("://", 1)[-1]
    escaped = _fix_start(escape(url))  # before measuring: the "r" counts towards the length
    if len(escaped) <= max_length:
        return escaped
    digest = hashlib.sha256(repo_key.encode("utf-8")).hexdigest()[:HASH_LENGTH]
    cut = escaped[: max_length - HASH_LENGTH - 1]
    dash = cut.rfind("-", len(cut) - 3)
    if dash != -1:
        cut = cut[:dash]
    return f"{cut}-{digest}"


def _fix_start(component: str) -> str:
    # a registry path component must start with [a-z0-9]
    return component if component[:1] in _SAFE else "r" + component


def check_prefix(prefix: str) -> str:
    """A registry prefix like `127.0.0.1:5000/fancy-env/` (must end with '/'; may be '')."""
    if prefix and (not prefix.endswith("/") or not _PREFIX.fullmatch(prefix)):
        raise ValueError(
            f"image prefix {prefix!r} must look like 'registry.example:5000/path/' "
            "(lowercase, ending with '/')"
        )
    return prefix


def image_name(prefix: str, repo_key: str, commit: str, max_length: int = 120) -> str:
    """`prefix + escaped repo : commit`, deterministic for (normalised repo, commit)."""
    check_prefix(prefix)
    if not _TAG.fullmatch(commit):
        raise ValueError(f"commit {commit!r} is not a valid image tag")
    return f"{prefix}{repo_component(repo_key, max_length)}:{commit}"


def split_image(image: str) -> tuple[str, str]:
    """`registry/path/name:tag` -> (`registry/path/name`, `tag`)."""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return image, "latest"
    return name, tag


DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def pinned_image(image: str, digest: str, in_registry: bool) -> str:
    """The reference a server launches for a build of `image` whose digest is `digest`.

    In a registry: `name@sha256:…` (the manifest digest: a later push to the tag cannot
    change what it names). On an engine without a registry: the image ID `sha256:…`, which
    Docker accepts wherever it takes an image. No digest (records from before 0.4, the fake
    executor): the tag itself."""
    if not digest:
        return image
    if not DIGEST.fullmatch(digest):
        raise ValueError(f"digest {digest!r} is not sha256:<64 hex digits>")
    return f"{split_image(image)[0]}@{digest}" if in_registry else digest


def is_pinned_form(image: str, digest: str, launch_image: str) -> bool:
    """Whether `launch_image` is one of the forms `pinned_image` gives for (image, digest):
    a spawner checks what the build service sends instead of taking any string."""
    if not digest:
        return launch_image == image
    return DIGEST.fullmatch(digest) is not None and launch_image in (
        f"{split_image(image)[0]}@{digest}",
        digest,
    )
