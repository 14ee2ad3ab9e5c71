"""The `fancy-env` command line: dispatch, options, normalisation (no hub is started)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from fancy_env.cli import UpApp, main


@pytest.mark.parametrize(
    ("argv", "code", "stream", "text"),
    [
        ([], 2, "out", "usage: fancy-env COMMAND"),
        (["--help"], 0, "out", "up      run a complete hub"),
        (["-h"], 0, "out", "build   build an image"),
        (["bogus"], 2, "err", "unknown command 'bogus' (allowed: up, build, gc, db)"),
    ],
)
def test_dispatch(
    argv: list[str], code: int, stream: str, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == code
    captured = capsys.readouterr()
    assert text in (captured.out if stream == "out" else captured.err)


def test_build_is_dispatched_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    fake = types.ModuleType("fancy_env.builder.cli_build")
    fake.main_build = lambda argv: seen.append(argv) or 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fancy_env.builder.cli_build", fake)
    assert main(["build", "https://example.org/r.git", "--ref", "main"]) == 3
    assert seen == [["https://example.org/r.git", "--ref", "main"]]


@pytest.mark.parametrize(
    ("argv", "trait", "value"),
    [
        (["--port", "9000"], "port", 9000),
        (["--port=9001"], "port", 9001),
        (["--base-url", "jh"], "base_url", "/jh/"),
        (["--base-url", "/a/b"], "base_url", "/a/b/"),
        (["--base-url", "/"], "base_url", "/"),
        (["--allow-loopback-repos"], "allow_loopback_repos", True),
        ([], "allow_loopback_repos", False),
        (["--build-image"], "build_image", True),
        ([], "sharing", True),
        (["--no-sharing"], "sharing", False),
        (["--image", "me/img:1"], "image", "me/img:1"),
        (["--config", "my.py"], "config_file", "my.py"),
        (["--ip", "0.0.0.0"], "ip", "0.0.0.0"),
    ],
)
def test_up_options(argv: list[str], trait: str, value: object) -> None:
    app = UpApp()
    app.initialize(argv)
    assert getattr(app, trait) == value
    UpApp.clear_instance()


def test_state_dir_default_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    app = UpApp()
    app.initialize([])
    assert app.state == tmp_path / "fancy-env" / "hub"
    UpApp.clear_instance()


def test_every_up_option_has_help() -> None:
    for name, trait in UpApp.class_traits(config=True).items():
        if name in UpApp.class_own_traits(config=True):
            assert len(trait.help) > 40, name
