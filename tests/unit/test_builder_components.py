"""BuilderApp.executor_class / cache_checker_class: classes by name, import string or class."""

from __future__ import annotations

import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError
from traitlets.config import Config

from fancy_env.builder import components
from fancy_env.builder.app import BuilderApp
from fancy_env.builder.executors.docker import DockerExecutor
from fancy_env.builder.executors.fake import FakeExecutor
from fancy_env.builder.executors.kube import KubernetesExecutor
from fancy_env.builder.registry import (
    EngineChecker,
    LocalCopyChecker,
    RegistryChecker,
    RememberingChecker,
    TableChecker,
)

ROOT = Path(__file__).resolve().parents[2]


def app(**traits: Any) -> BuilderApp:
    return BuilderApp(config=Config({"BuilderApp": traits}))


def test_pyproject_declares_the_builtin_names() -> None:
    """The entry points of pyproject.toml and the names known without installed metadata
    are the same table."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = project["entry-points"]
    assert groups[components.EXECUTOR_GROUP] == components.BUILTIN_EXECUTORS
    assert groups[components.CHECKER_GROUP] == components.BUILTIN_CHECKERS


@pytest.mark.parametrize(
    ("trait", "value", "expect"),
    [
        ("executor_class", "docker", DockerExecutor),
        ("executor_class", "kubernetes", KubernetesExecutor),
        ("executor_class", "fake", FakeExecutor),
        ("executor_class", "Fake", FakeExecutor),  # names are case-insensitive, like the hub's
        ("executor_class", "fancy_env.builder.executors.fake.FakeExecutor", FakeExecutor),
        ("executor_class", "fancy_env.builder.executors.fake:FakeExecutor", FakeExecutor),
        ("executor_class", FakeExecutor, FakeExecutor),
        ("cache_checker_class", "registry", RegistryChecker),
        ("cache_checker_class", "engine", EngineChecker),
        ("cache_checker_class", "table", TableChecker),
        ("cache_checker_class", "fancy_env.builder.registry.TableChecker", TableChecker),
        ("cache_checker_class", EngineChecker, EngineChecker),
    ],
)
def test_names_resolve(trait: str, value: Any, expect: type) -> None:
    assert getattr(app(**{trait: value}), trait) is expect


@pytest.mark.parametrize(
    ("trait", "value", "words"),
    [
        ("executor_class", "dockr", "not a known name nor importable"),
        ("executor_class", "no.such.module.Executor", "not a known name nor importable"),
        ("executor_class", TableChecker, "not a subclass of Executor"),
        ("executor_class", "fancy_env.builder.registry.TableChecker", "not a subclass"),
        ("cache_checker_class", "regsitry", "not a known name nor importable"),
    ],
)
def test_bad_value_names_the_trait_and_the_names(trait: str, value: Any, words: str) -> None:
    with pytest.raises(TraitError) as e:
        app(**{trait: value})
    text = str(e.value)
    assert text.startswith(f"BuilderApp.{trait}: ")
    assert words in text
    names = components.BUILTIN_EXECUTORS if trait == "executor_class" else (
        components.BUILTIN_CHECKERS
    )  # fmt: skip
    assert ", ".join(sorted(names)) in text


def test_installed_entry_point_is_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A package declaring `fancy_env.executors` = {name: class} makes `name` valid."""
    ep = EntryPoint("scripted", "fancy_env.builder.executors.fake:FakeExecutor",
                    components.EXECUTOR_GROUP)  # fmt: skip
    monkeypatch.setattr(components, "entry_points", lambda group: [ep] if group == ep.group else [])
    assert app(executor_class="scripted").executor_class is FakeExecutor
    assert "'scripted' (fancy_env.builder.executors.fake:FakeExecutor)" in (
        BuilderApp.class_traits()["executor_class"].help
    )


@pytest.mark.parametrize(
    ("traits", "checker", "inner"),
    [
        # the cache check follows the registry config
        ({}, EngineChecker, None),
        ({"image_prefix": "127.0.0.1:5000/fe/"}, LocalCopyChecker, RegistryChecker),
        ({"image_prefix": "127.0.0.1:5000/fe/", "executor_class": "kubernetes"},
         RegistryChecker, None),
        ({"executor_class": "kubernetes"}, EngineChecker, None),
        ({"executor_class": "fake"}, TableChecker, None),
        ({"executor_class": "fake", "image_prefix": "127.0.0.1:5000/fe/"}, TableChecker, None),
        # chosen explicitly
        ({"image_prefix": "127.0.0.1:5000/fe/", "cache_checker_class": "engine"},
         EngineChecker, None),
        ({"cache_checker_class": "table"}, TableChecker, None),
    ],
)  # fmt: skip
def test_checker_by_registry_config(traits: dict[str, Any], checker: type, inner: Any) -> None:
    made = app(**traits).make_checker(store=None)
    assert isinstance(made, RememberingChecker)
    assert type(made.inner) is checker
    if inner is not None:
        assert type(made.inner.registry) is inner


def test_registry_checker_without_a_registry_stops_with_a_message() -> None:
    with pytest.raises(SystemExit, match="no registry is configured"):
        app(cache_checker_class="registry").make_checker(store=None)


class OwnChecker:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    @classmethod
    def from_app(cls, app: Any, store: Any, credential: Any) -> OwnChecker:
        return cls(app.docker_socket)

    async def exists(self, image: str) -> bool:
        return False


def test_a_checker_of_another_package() -> None:
    made = app(cache_checker_class=OwnChecker, cache_check_ttl=0).make_checker(store=None)
    assert isinstance(made, OwnChecker) and made.socket == "/var/run/docker.sock"
    with pytest.raises(SystemExit, match="from_app"):
        app(cache_checker_class=dict).make_checker(store=None)


def test_setup_hands_a_class_over_as_its_import_string(tmp_path: Path) -> None:
    import fancy_env
    from fancy_env.hubconfig import read_service_file

    fancy_env.setup(Config(), state_dir=tmp_path, executor=FakeExecutor)
    config = read_service_file(tmp_path / "service.json")["config"]
    assert config["BuilderApp"]["executor_class"] == (
        "fancy_env.builder.executors.fake:FakeExecutor"
    )
    assert app(**config["BuilderApp"]).executor_class is FakeExecutor
