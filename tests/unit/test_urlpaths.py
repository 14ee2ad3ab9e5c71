"""Binder's `urlpath` / `labpath`: what a launch may open (pure rules, parameter tables)."""

from __future__ import annotations

from typing import Any

import pytest

from fancy_env import urlpaths as U


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("lab/tree/notebooks/intro.ipynb", "lab/tree/notebooks/intro.ipynb"),
        ("tree/x.ipynb", "tree/x.ipynb"),
        ("doc/tree/a/b.ipynb", "doc/tree/a/b.ipynb"),
        ("lab", "lab"),
        ("tree/notebooks/", "tree/notebooks/"),
        ("  lab/tree/x.ipynb  ", "lab/tree/x.ipynb"),
        ("lab/tree/My Notebook.ipynb", "lab/tree/My%20Notebook.ipynb"),
        ("lab/tree/My%20Notebook.ipynb", "lab/tree/My%20Notebook.ipynb"),
        ("lab/tree/café.ipynb", "lab/tree/caf%C3%A9.ipynb"),
        ("lab/tree/{username}.ipynb", "lab/tree/%7Busername%7D.ipynb"),
        ("lab/tree/50%25off.ipynb", "lab/tree/50%25off.ipynb"),
        ("lab/tree/a%3Fb.ipynb", "lab/tree/a%3Fb.ipynb"),
        ("lab/tree/..hidden/x.ipynb", "lab/tree/..hidden/x.ipynb"),
        ("lab/tree/a:b.ipynb", "lab/tree/a:b.ipynb"),
        ("lab/tree/x.ipynb?reset", "lab/tree/x.ipynb?reset"),
        ("voila/render/x.ipynb?theme=dark&a=%20b", "voila/render/x.ipynb?theme=dark&a=%20b"),
    ],
)
def test_urlpath_accepted_and_normalised(given: str, normal: str) -> None:
    assert U.normalise_urlpath(given) == normal
    assert U.urlpath_from({"urlpath": given}) == normal


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("../../hub/admin", "traversal"),
        ("lab/tree/../../../hub/admin", "traversal"),
        ("%2e%2e/x", "traversal"),
        ("lab/%2E%2e/x", "traversal"),
        (".%2e/x", "traversal"),
        ("lab/./tree", "traversal"),
        ("..", "traversal"),
        ("/etc/passwd", "leading '/'"),
        ("//evil.example/x", "leading '/'"),
        ("https://evil.example/x", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("HTTP:x", "scheme"),
        ("\\\\evil.example\\x", "backslash"),
        ("lab\\tree", "backslash"),
        ("lab/%5c..%5cx", "encoded"),
        ("%2f%2fevil.example/x", "encoded"),
        ("lab/tree%2F..%2Fhub", "encoded"),
        ("%252e%252e/x", "twice"),
        ("lab/tree/x\x00.ipynb", "control"),
        ("lab/tree/x%00.ipynb", "control"),
        ("lab/tree/x\n.ipynb", "control"),
        ("lab/tree/x%0d%0aSet-Cookie:a", "control"),
        ("lab/tree/x\u2028y", "control"),
        ("lab/tree/x.ipynb?a=%0a", "control"),
        ("lab/tree/x.ipynb?a={b}", "query"),
        ("lab/tree/x.ipynb#cell=3", "fragment"),
        ("lab//tree", "empty"),
        ("lab/tree/50%off", "'%'"),
        ("lab/tree/%ff.ipynb", "UTF-8"),
        ("lab/" + "a" * 1100, "at most"),
        ("lab/" + "é" * 400, "encoded"),
        ("?x=1", "no path"),
    ],
)
def test_urlpath_refused_naming_the_field(given: str, words: str) -> None:
    with pytest.raises(U.URLPathError) as err:
        U.normalise_urlpath(given)
    assert err.value.field == "urlpath"
    assert str(err.value).startswith("urlpath: ")
    assert words in err.value.message


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("notebooks/intro.ipynb", "lab/tree/notebooks/intro.ipynb"),
        ("README.md", "lab/tree/README.md"),
        ("a b/c.py", "lab/tree/a%20b/c.py"),
        ("a%3Fb.ipynb", "lab/tree/a%3Fb.ipynb"),
    ],
)
def test_labpath_means_lab_tree(given: str, normal: str) -> None:
    assert U.normalise_labpath(given) == normal
    assert U.urlpath_from({"labpath": given}) == normal


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("../secret", "traversal"),
        ("%2e%2e/secret", "traversal"),
        ("/etc/passwd", "leading '/'"),
        ("https://evil.example/x", "scheme"),
        ("x.ipynb?reset", "file path"),
        ("x.ipynb#top", "file path"),
        ("x\x07", "control"),
    ],
)
def test_labpath_refused_naming_the_field(given: str, words: str) -> None:
    with pytest.raises(U.URLPathError) as err:
        U.urlpath_from({"labpath": given})
    assert err.value.field == "labpath"
    assert words in err.value.message


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, ""),
        ({"urlpath": ""}, ""),
        ({"urlpath": None, "labpath": ""}, ""),
        ({"urlpath": "   "}, ""),
        ({"profile": "x"}, ""),
    ],
)
def test_nothing_to_open(values: dict[str, Any], expected: str) -> None:
    assert U.urlpath_from(values) == expected


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"urlpath": "lab", "labpath": "x.ipynb"}, "labpath", "not both"),
        ({"urlpath": ["lab"]}, "urlpath", "string"),
        ({"labpath": 3}, "labpath", "string"),
    ],
)
def test_urlpath_from_refusals(values: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(U.URLPathError) as err:
        U.urlpath_from(values)
    assert err.value.field == field and words in err.value.message


def test_default_url_is_server_relative() -> None:
    assert U.default_url("lab/tree/x.ipynb") == "/lab/tree/x.ipynb"
